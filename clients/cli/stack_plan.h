#pragma once
// What the embedded local stack runs: the event bus, every service of LocalStackServices() and
// the gateway, in that (start) order, each with its typed YAML config. Ports are chosen once per
// plan so that a restarted process comes back on the same address its peers were given.

#include <google/protobuf/message.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cli/stack_paths.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::cli {

// A service of the local stack. Adding a service is one entry in LocalStackServices().
struct ServiceDefinition {
  std::string name;                        // process name, e.g. "environment"
  std::string binary;                      // executable next to `submarine`
  std::string schema;                      // its own PostgreSQL schema
  std::vector<std::string> grpc_services;  // what the gateway routes to it
  std::string topic_prefix;                // of the events it publishes, e.g. "submarine.x.v1."
  // Its config message type (a message with a `common` field of type CommonServiceConfig).
  const google::protobuf::Message* config_type = nullptr;
  // Sets the service's own fields beyond `common` (may be empty).
  std::function<void(const StackPaths&, const struct StackSettings&, google::protobuf::Message*)>
      customize;
};

// What a service's config may need to know of the stack as a whole.
struct StackSettings {
  std::string gateway_url;  // "http://127.0.0.1:<port>": where workloads reach the platform
  std::string sdk_dir;      // the Python SDK's directory (holding submarine/); "" = not found
  std::string pip_index_url;
  std::string pip_find_links;
  uint32_t identity_token_ttl_seconds = 0;  // tasks' identity tokens; 0 = the service's default
};

// The Python SDK next to the binaries in `bin_dir`: the source tree's clients/python (bin_dir
// is <repo>/build/bin) or an installation's share/submarine/python; "" when neither exists.
std::string FindPythonSdk(const std::string& bin_dir);

// Renders any service's typed config (as JSON, which is YAML): `common`, then its own fields.
absl::StatusOr<std::string> RenderServiceConfig(const ServiceDefinition& service,
                                                const config::v1::CommonServiceConfig& common,
                                                const StackPaths& paths,
                                                const StackSettings& settings = {});

// The services of the local stack, in start order: the permission service first (everyone
// authorizes against it), then the others.
const std::vector<ServiceDefinition>& LocalStackServices();

// The service every other one authorizes against (and the gateway authenticates with).
inline constexpr char kPermissionServiceName[] = "permission";

// The login role owning `schema`: "submarine_<schema>".
std::string RoleForSchema(const std::string& schema);

// The PostgreSQL database every service schema lives in.
inline constexpr char kStackDatabase[] = "submarine";

struct ProcessPlan {
  std::string name;         // "eventbus", a service name, or "gateway"
  std::string binary_path;  // absolute path of the executable
  std::string config_file;  // where config_text is written
  std::string config_text;  // the process' YAML config
  std::string ready_file;   // server.ready_file of the config
  std::string log_file;     // stdout+stderr of the process
  std::vector<std::string> Argv() const { return {binary_path, "--config", config_file}; }
};

struct StackPlan {
  std::vector<ProcessPlan> processes;  // start order; stop in reverse
  std::string gateway_url;             // "http://127.0.0.1:<port>"
};

struct StackPlanOptions {
  std::string bin_dir;    // where the process binaries are
  int gateway_port = 0;   // 0: any free port
  int postgres_port = 0;  // the running cluster's port
  // pip's sources for the virtualenvs of environments with pip dependencies ("" = pip's own).
  std::string pip_index_url;
  std::string pip_find_links;
  // How long tasks' identity tokens live before they are renewed at half-life (0 = default).
  uint32_t identity_token_ttl_seconds = 0;
  // Source of free ports (tests inject a deterministic one).
  std::function<absl::StatusOr<int>()> pick_port;
};

// Builds the plan: picks ports, renders every config. Every process' server.gateway_secret_file
// is paths.GatewaySecretFile() (see EnsureGatewaySecret). Pure apart from `pick_port`.
absl::StatusOr<StackPlan> BuildStackPlan(const StackPaths& paths, const StackPlanOptions& options);

// Creates the internal secret file (32 random bytes, base64, 0600) unless it exists; the
// supervisor calls it before starting anything. INVALID_ARGUMENT if an existing file is malformed.
absl::Status EnsureGatewaySecret(const std::string& path);

// Writes every process' config file (0644; they hold no secrets, only password file paths).
absl::Status WriteConfigs(const StackPlan& plan);

}  // namespace submarine::cli
