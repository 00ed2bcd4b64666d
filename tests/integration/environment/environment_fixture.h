#pragma once
// Starts a real environment-service process on a fresh database of the run's throwaway
// PostgreSQL (optionally with a real gateway in front) and gives tests gRPC stubs to it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "submarine/common/v1/events.grpc.pb.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::testing {

struct EnvironmentProcess {
  std::string dir;
  std::string dbname;
  ChildProcess process;
  ReadyInfo ready;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<submarine::environment::v1::EnvironmentService::Stub> stub;
  // Internal-only: call it with ServiceCtx() (or a SERVICE principal of the service's secret).
  std::unique_ptr<submarine::common::v1::EventLog::Stub> events;
  // Set when started with a gateway in front.
  ChildProcess gateway;
  ReadyInfo gateway_ready;
};

// The `permission:` block of a service that authorizes nothing (the suites of the environment
// service alone).
inline constexpr char kInsecurePermission[] = "permission:\n  insecure_no_authorization: true\n";

// The internal secret StartEnvironment gives such a service when the caller names none (every
// Submarine process holds one: it signs the service's events and authenticates EventLog callers).
inline constexpr char kTestSecret[] = "environment-test-internal-secret-0123456789";

// The `permission:` block of a service that asks the permission service at `address`,
// invalidating its cache from the bus' XPUB `subscribe_endpoint`. Such a service also needs
// `secret_file` (server.gateway_secret_file, the permission fixture's secret_file).
std::string PermissionYaml(const std::string& address, const std::string& subscribe_endpoint,
                           uint32_t cache_ttl_ms = 30000);

// Config YAML of an environment service on `dbname` (publishing nowhere unless `bus` is set),
// with the `permission` block placed before the final `events:` block and `secret_file` as
// server.gateway_secret_file ("" = none).
std::string EnvironmentConfig(const std::string& dbname, const std::string& bus = "",
                              const std::string& permission = kInsecurePermission,
                              const std::string& secret_file = "");

// Starts the service; ASSERT-style failure is reported through the returned status.
// Starts the service publishing to `bus` (an eventbus frontend, or "" for none). `extra_yaml` is
// appended to the config, right after its last block (`events:`): indent a line by two spaces to
// add an events key, or start it at column 0 for a top-level key.
// `permission` and `secret_file` as for EnvironmentConfig, except that a service with
// kInsecurePermission and no `secret_file` gets kTestSecret (written into its dir).
absl::StatusOr<std::unique_ptr<EnvironmentProcess>> StartEnvironment(
    const std::string& dbname = "", const std::string& dir = "", const std::string& extra_yaml = "",
    const std::string& bus = "", const std::string& permission = kInsecurePermission,
    const std::string& secret_file = "");

// Starts a real gateway in front of `env` (REST on gateway_ready.http, gRPC proxy on
// gateway_ready.grpc), authenticating nobody (auth.insecure_no_authorization) unless `auth_yaml`
// replaces that `auth:` block (and may add top-level keys such as `server:`).
absl::Status StartGateway(EnvironmentProcess* env, const std::string& auth_yaml = "");

// A client context with a deadline and request id.
std::unique_ptr<grpc::ClientContext> Ctx(const std::string& request_id = "");
// The same as Principal{SERVICE, "environment-test"} signed with kTestSecret, for EventLog.
std::unique_ptr<grpc::ClientContext> ServiceCtx();

}  // namespace submarine::testing
