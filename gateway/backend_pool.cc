#include "gateway/backend_pool.h"

#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/rpc/channel.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace submarine::gateway {

absl::StatusOr<std::unique_ptr<BackendPool>> BackendPool::Create(
    const submarine::config::v1::GatewayConfig& config) {
  auto pool = std::make_unique<BackendPool>();
  std::map<std::string, Backend*> by_address;
  for (const auto& b : config.backends()) {
    if (b.address().empty()) return absl::InvalidArgumentError("backends[].address is empty");
    Backend*& backend = by_address[b.address()];
    if (backend == nullptr) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      args.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);
      auto owned = std::make_unique<Backend>();
      owned->address = b.address();
      owned->channel = rpc::MakeChannel(b.address(), args);
      owned->stub = std::make_unique<grpc::GenericStub>(owned->channel);
      backend = owned.get();
      pool->backends_.push_back(std::move(owned));
    }
    for (const auto& service : b.services()) {
      if (!pool->by_service_.emplace(service, backend).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("service ", service, " is listed for more than one backend"));
      }
      backend->services.push_back(service);
      pool->services_.push_back(service);
    }
  }
  return pool;
}

const Backend* BackendPool::ForService(std::string_view service) const {
  auto it = by_service_.find(service);
  return it == by_service_.end() ? nullptr : it->second;
}

const Backend* BackendPool::ForMethod(std::string_view method_path) const {
  if (method_path.empty() || method_path[0] != '/') return nullptr;
  size_t slash = method_path.find('/', 1);
  if (slash == std::string_view::npos) return nullptr;
  return ForService(method_path.substr(1, slash - 1));
}

std::vector<std::string> BackendPool::Services() const { return services_; }

namespace {

// Collects the per-backend results and calls `done` after the last one.
struct HealthRound {
  std::mutex mu;
  std::vector<BackendHealth> results;
  size_t pending = 0;
  std::function<void(std::vector<BackendHealth>)> done;

  void Report(size_t index, BackendHealth health) {
    std::vector<BackendHealth> finished;
    {
      std::lock_guard lock(mu);
      results[index] = std::move(health);
      if (--pending != 0) return;
      finished = std::move(results);
    }
    done(std::move(finished));
  }
};

struct HealthCall {
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub;
};

}  // namespace

void BackendPool::CheckHealth(std::chrono::milliseconds timeout,
                              std::function<void(std::vector<BackendHealth>)> done) const {
  if (backends_.empty()) {
    done({});
    return;
  }
  auto round = std::make_shared<HealthRound>();
  round->results.resize(backends_.size());
  round->pending = backends_.size();
  round->done = std::move(done);
  for (size_t i = 0; i < backends_.size(); ++i) {
    const Backend* backend = backends_[i].get();
    auto call = std::make_shared<HealthCall>();
    call->stub = grpc::health::v1::Health::NewStub(backend->channel);
    call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    call->stub->async()->Check(
        &call->context, &call->request, &call->response,
        [round, call, i, address = backend->address](grpc::Status status) {
          BackendHealth health;
          health.address = address;
          if (!status.ok()) {
            health.problem =
                absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
          } else if (call->response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
            health.problem =
                grpc::health::v1::HealthCheckResponse::ServingStatus_Name(call->response.status());
          } else {
            health.serving = true;
          }
          round->Report(i, std::move(health));
        });
  }
}

}  // namespace submarine::gateway
