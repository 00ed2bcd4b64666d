#pragma once
// The shared process runner of every Submarine gRPC process: builds the gRPC server (health,
// reflection, the call interceptor of call_context.h: admission, request ids, access log,
// metrics), serves Prometheus metrics, writes the
// ready file, starts background tasks, and on SIGTERM/SIGINT (seen by a signal thread, never in
// a handler) shuts down gracefully: health NOT_SERVING → drain in-flight calls (new calls get
// UNAVAILABLE) → stop tasks in reverse start order → run shutdown hooks (close pools) → exit 0.

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/metrics/metrics.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::rpc {

// The largest gRPC message a Submarine server accepts and the gateway receives from a backend.
// A REST body limit above it could not reach the service (see the max_body_bytes option).
inline constexpr int kMaxMessageBytes = 16 * 1024 * 1024;

// A background loop owned elsewhere (event relay, subscriber, reconciler).
class BackgroundTask {
 public:
  virtual ~BackgroundTask() = default;
  virtual std::string TaskName() const = 0;
  // Starts the loop's thread(s); returns at once.
  virtual absl::Status Start() = 0;
  // Called for every task when shutdown begins, before the gRPC server drains: a task that
  // serves requests of its own (the gateway's HTTP side) starts draining here, in parallel.
  // Must not block.
  virtual void BeginStop() {}
  // Asks the loop to stop after its current unit of work and joins it.
  virtual void Stop() = 0;
  // False while the task cannot do its job (e.g. subscriber too far behind); reported through
  // health as NOT_SERVING.
  virtual bool Healthy() const { return true; }
};

class ServerRunner {
 public:
  ServerRunner(submarine::config::v1::ServerConfig config, std::string process_name);
  ~ServerRunner();

  // Registers a service (not owned; must outlive the runner). Before Start().
  void AddService(grpc::Service* service);
  // Registers a generic (proxy) service, at most one. Before Start().
  void SetGenericService(grpc::CallbackGenericService* service);
  // Registers a background task (not owned), started after the server serves.
  void AddTask(BackgroundTask* task);
  // Adds a key to the ready file (e.g. "http" → the gateway's bound HTTP address). Before Start().
  void AddReadyField(const std::string& key, const std::string& value);
  // Runs at the very end of shutdown, in reverse registration order.
  void OnShutdown(std::function<void()> hook);
  // The call interceptor observes (access log, metrics, request ids) but admits every call: for
  // the gateway, whose proxy authenticates callers by token. Before Start().
  void ObserveCallsOnly() { enforce_call_policy_ = false; }

  // Blocks SIGTERM/SIGINT for every thread created afterwards and starts the signal thread.
  // Call first in main(), before any other thread exists.
  static void InstallSignalHandling();

  // Builds and starts the server and tasks and writes the ready file.
  absl::Status Start();
  // Graceful shutdown (idempotent); safe from any thread.
  void Shutdown();
  // Blocks until a signal arrives (if signal handling is installed) or Shutdown() is called,
  // then completes shutdown.
  void Wait();
  // Start() + Wait(); returns the process exit code.
  int Run();

  // The bound gRPC address, "127.0.0.1:port".
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  grpc::Server* server() { return server_.get(); }

 private:
  void WatchHealth();

  submarine::config::v1::ServerConfig config_;
  std::string process_;
  std::vector<grpc::Service*> services_;
  grpc::CallbackGenericService* generic_ = nullptr;
  std::vector<BackgroundTask*> tasks_;
  std::vector<BackgroundTask*> started_;
  std::vector<std::function<void()>> hooks_;
  std::vector<std::pair<std::string, std::string>> ready_fields_;
  bool enforce_call_policy_ = true;
  std::unique_ptr<grpc::Server> server_;
  metrics::MetricsServer metrics_server_;
  std::string grpc_address_;
  std::string metrics_address_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_requested_ = false;
  bool shutdown_done_ = false;
  std::thread health_thread_;
};

// Reads `--config FILE` (or SUBMARINE_CONFIG) from argv into `config`; false with a message on
// stderr if missing or invalid.
bool LoadConfigFromArgs(int argc, char** argv, google::protobuf::Message* config);

}  // namespace submarine::rpc
