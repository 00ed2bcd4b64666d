#include "tests/integration/environment/environment_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/config/config.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"

namespace submarine::testing {

std::string PermissionYaml(const std::string& address, const std::string& subscribe_endpoint,
                           uint32_t cache_ttl_ms) {
  return absl::StrCat("permission:\n  address: \"", address, "\"\n  subscribe_endpoint: \"",
                      subscribe_endpoint, "\"\n  cache_ttl_ms: ", cache_ttl_ms, "\n");
}

std::string EnvironmentConfig(const std::string& dbname, const std::string& bus,
                              const std::string& permission, const std::string& secret_file) {
  auto& pg = TestPostgres::Get();
  return absl::StrCat(
      "server:\n  grpc_listen: 127.0.0.1:0\n  shutdown_grace_ms: 5000\n",
      secret_file.empty() ? "" : absl::StrCat("  gateway_secret_file: ", secret_file, "\n"),
      "database:\n  host: ", pg.socket_dir(), "\n  port: ", pg.port(), "\n  dbname: ", dbname,
      "\n  user: postgres\n  schema: environment\n", permission, "events:\n  publish_endpoint: \"",
      bus, "\"\n  heartbeat_ms: 200\n");
}

absl::StatusOr<std::unique_ptr<EnvironmentProcess>> StartEnvironment(
    const std::string& dbname, const std::string& dir, const std::string& extra_yaml,
    const std::string& bus, const std::string& permission, const std::string& secret_file) {
  auto p = std::make_unique<EnvironmentProcess>();
  p->dir = dir.empty() ? MakeTempDir("env-test") : dir;
  p->dbname = dbname.empty() ? TestPostgres::Get().CreateDatabase("env") : dbname;
  std::string secret = secret_file;
  if (secret.empty() && permission == kInsecurePermission) {
    secret = p->dir + "/internal.secret";
    SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(secret, kTestSecret, 0600));
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      p->process,
      StartService("submarine-environment", p->dir, "environment",
                   EnvironmentConfig(p->dbname, bus, permission, secret) + extra_yaml, &p->ready));
  p->channel = rpc::MakeChannel(p->ready.grpc);
  p->stub = submarine::environment::v1::EnvironmentService::NewStub(p->channel);
  p->events = submarine::common::v1::EventLog::NewStub(p->channel);
  return p;
}

absl::Status StartGateway(EnvironmentProcess* env, const std::string& auth_yaml) {
  std::string yaml = absl::StrCat(
      "http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\nbackends:\n  - address: ",
      env->ready.grpc,
      "\n    services: [submarine.environment.v1.EnvironmentService, "
      "submarine.environment.v1.SubmarineEnvironmentApi, "
      "submarine.environment.v1.ComputeClusterService]\n",
      auth_yaml.empty() ? "auth:\n  insecure_no_authorization: true\nserver: {}\n" : auth_yaml);
  SUBMARINE_ASSIGN_OR_RETURN(env->gateway, StartService("submarine-gateway", env->dir, "gateway",
                                                        yaml, &env->gateway_ready));
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& request_id) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!request_id.empty()) ctx->AddMetadata("x-request-id", request_id);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> ServiceCtx() {
  auto ctx = Ctx();
  // Only ever used for the event log's ListEvents.
  auth::PrincipalCodec(kTestSecret)
      .Attach(ctx.get(), auth::ServicePrincipal("environment-test"), "",
              "/submarine.common.v1.EventLog/ListEvents");
  return ctx;
}

}  // namespace submarine::testing
