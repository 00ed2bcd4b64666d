#pragma once
// The gateway's gRPC backends: one channel (and generic stub) per configured address, looked up
// by fully qualified service name. Channels reconnect quickly (at most 1 s between attempts) so a
// restarted backend is reachable again at once. Immutable after Create(); thread-safe.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::gateway {

struct Backend {
  std::string address;
  std::vector<std::string> services;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

// Result of one backend's grpc.health.v1 Check.
struct BackendHealth {
  std::string address;
  bool serving = false;
  std::string problem;  // why it is not serving, e.g. "UNAVAILABLE: failed to connect"
};

class BackendPool {
 public:
  // INVALID_ARGUMENT if a backend has no address or a service is listed twice.
  static absl::StatusOr<std::unique_ptr<BackendPool>> Create(
      const submarine::config::v1::GatewayConfig& config);

  // The backend serving `service` ("submarine.environment.v1.EnvironmentService"); null if none.
  const Backend* ForService(std::string_view service) const;
  // The backend for a gRPC method path "/package.Service/Method"; null if none.
  const Backend* ForMethod(std::string_view method_path) const;
  const std::vector<std::unique_ptr<Backend>>& backends() const { return backends_; }
  // Every configured service name, in configuration order.
  std::vector<std::string> Services() const;

  // Asks every backend's grpc.health.v1 Check (service "") in parallel; `done` runs once, on a
  // gRPC thread, with one result per backend in configuration order.
  void CheckHealth(std::chrono::milliseconds timeout,
                   std::function<void(std::vector<BackendHealth>)> done) const;

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
  std::map<std::string, const Backend*, std::less<>> by_service_;
  std::vector<std::string> services_;
};

}  // namespace submarine::gateway
