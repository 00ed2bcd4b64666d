#include "clients/cli/stack_plan.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/net/address.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

using config::v1::EventbusConfig;
using config::v1::GatewayConfig;
using config::v1::ServerConfig;

constexpr int kShutdownGraceMs = 5000;

absl::StatusOr<std::string> RenderJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!st.ok()) return Internal(absl::StrCat("rendering a config: ", st.ToString()));
  return out;
}

absl::StatusOr<std::string> RenderEnvironmentConfig(const ServiceConfigParts& parts) {
  config::v1::EnvironmentServiceConfig config;
  *config.mutable_server() = parts.server;
  *config.mutable_database() = parts.database;
  *config.mutable_events() = parts.events;
  return RenderJson(config);
}

std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

// `grpc`: the process serves gRPC and metrics on ports of its own (the gateway serves /metrics on
// its HTTP port and takes neither).
absl::StatusOr<ServerConfig> MakeServerConfig(const StackPaths& paths, const std::string& name,
                                              const StackPlanOptions& options, bool grpc) {
  ServerConfig server;
  if (grpc) {
    SUBMARINE_ASSIGN_OR_RETURN(int grpc_port, options.pick_port());
    SUBMARINE_ASSIGN_OR_RETURN(int metrics_port, options.pick_port());
    server.set_grpc_listen(Loopback(grpc_port));
    server.set_metrics_listen(Loopback(metrics_port));
  }
  server.set_ready_file(paths.ReadyFile(name));
  server.set_shutdown_grace_ms(kShutdownGraceMs);
  return server;
}

ProcessPlan MakeProcess(const StackPaths& paths, const StackPlanOptions& options,
                        const std::string& name, const std::string& binary,
                        std::string config_text) {
  return ProcessPlan{name,
                     absl::StrCat(options.bin_dir, "/", binary),
                     paths.ConfigFile(name),
                     std::move(config_text),
                     paths.ReadyFile(name),
                     paths.LogFile(name)};
}

}  // namespace

const std::vector<ServiceDefinition>& LocalStackServices() {
  static const auto* services = new std::vector<ServiceDefinition>{
      {"environment",
       "submarine-environment",
       "environment",
       {"submarine.environment.v1.EnvironmentService",
        "submarine.environment.v1.SubmarineEnvironmentApi"},
       RenderEnvironmentConfig},
  };
  return *services;
}

std::string RoleForSchema(const std::string& schema) { return "submarine_" + schema; }

absl::StatusOr<StackPlan> BuildStackPlan(const StackPaths& paths,
                                         const StackPlanOptions& input_options) {
  StackPlanOptions options = input_options;
  if (!options.pick_port) options.pick_port = net::PickFreePort;
  StackPlan plan;

  EventbusConfig bus;
  SUBMARINE_ASSIGN_OR_RETURN(int frontend_port, options.pick_port());
  SUBMARINE_ASSIGN_OR_RETURN(int backend_port, options.pick_port());
  bus.set_frontend(absl::StrCat("tcp://", Loopback(frontend_port)));
  bus.set_backend(absl::StrCat("tcp://", Loopback(backend_port)));
  SUBMARINE_ASSIGN_OR_RETURN(*bus.mutable_server(),
                             MakeServerConfig(paths, "eventbus", options, /*grpc=*/true));
  SUBMARINE_ASSIGN_OR_RETURN(std::string bus_text, RenderJson(bus));
  plan.processes.push_back(
      MakeProcess(paths, options, "eventbus", "submarine-eventbus", std::move(bus_text)));

  GatewayConfig gateway;
  for (const ServiceDefinition& service : LocalStackServices()) {
    ServiceConfigParts parts;
    SUBMARINE_ASSIGN_OR_RETURN(parts.server,
                               MakeServerConfig(paths, service.name, options, /*grpc=*/true));
    auto& db = parts.database;
    db.set_host("127.0.0.1");
    db.set_port(static_cast<uint32_t>(options.postgres_port));
    db.set_dbname(kStackDatabase);
    db.set_user(RoleForSchema(service.schema));
    db.set_password_file(paths.PasswordFile(RoleForSchema(service.schema)));
    db.set_schema(service.schema);
    parts.events.set_publish_endpoint(bus.frontend());
    parts.events.set_subscribe_endpoint(bus.backend());
    SUBMARINE_ASSIGN_OR_RETURN(std::string text, service.render_config(parts));
    plan.processes.push_back(
        MakeProcess(paths, options, service.name, service.binary, std::move(text)));

    auto* backend = gateway.add_backends();
    backend->set_address(parts.server.grpc_listen());
    for (const auto& s : service.grpc_services) backend->add_services(s);
  }

  int http_port = options.gateway_port;
  if (http_port == 0) {
    SUBMARINE_ASSIGN_OR_RETURN(http_port, options.pick_port());
  }
  gateway.set_http_listen(Loopback(http_port));
  // Native gRPC clients reach every service through the gateway's proxy port.
  SUBMARINE_ASSIGN_OR_RETURN(int gateway_grpc_port, options.pick_port());
  gateway.set_grpc_listen(Loopback(gateway_grpc_port));
  SUBMARINE_ASSIGN_OR_RETURN(*gateway.mutable_server(),
                             MakeServerConfig(paths, "gateway", options, /*grpc=*/false));
  SUBMARINE_ASSIGN_OR_RETURN(std::string gateway_text, RenderJson(gateway));
  plan.processes.push_back(
      MakeProcess(paths, options, "gateway", "submarine-gateway", std::move(gateway_text)));
  plan.gateway_url = absl::StrCat("http://", Loopback(http_port));
  return plan;
}

absl::Status WriteConfigs(const StackPlan& plan) {
  for (const ProcessPlan& p : plan.processes) {
    SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(p.config_file, p.config_text, 0644));
  }
  return absl::OkStatus();
}

}  // namespace submarine::cli
