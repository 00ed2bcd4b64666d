#include "common/rpc/server_runner.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/log/log.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"

namespace submarine::rpc {
namespace {

std::atomic<ServerRunner*> g_active{nullptr};
std::atomic<bool> g_signals_installed{false};
std::atomic<bool> g_signal_seen{false};

}  // namespace

ServerRunner::ServerRunner(submarine::config::v1::ServerConfig config, std::string process_name)
    : config_(std::move(config)), process_(std::move(process_name)) {}

ServerRunner::~ServerRunner() {
  Shutdown();
  if (health_thread_.joinable()) health_thread_.join();
  ServerRunner* self = this;
  g_active.compare_exchange_strong(self, nullptr);
}

void ServerRunner::AddService(grpc::Service* service) { services_.push_back(service); }
void ServerRunner::SetGenericService(grpc::CallbackGenericService* service) { generic_ = service; }
void ServerRunner::AddTask(BackgroundTask* task) { tasks_.push_back(task); }
void ServerRunner::AddReadyField(const std::string& key, const std::string& value) {
  ready_fields_.emplace_back(key, value);
}
void ServerRunner::OnShutdown(std::function<void()> hook) { hooks_.push_back(std::move(hook)); }

void ServerRunner::InstallSignalHandling() {
  if (g_signals_installed.exchange(true)) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      log::Get("runner")->info("received signal {}; shutting down gracefully", sig);
      g_signal_seen = true;
      if (auto* runner = g_active.load()) {
        runner->Shutdown();
      } else {
        std::_Exit(128 + sig);  // still starting (e.g. waiting for the database): nothing to drain
      }
    }
  }).detach();
}

absl::Status ServerRunner::Start() {
  if (!config_.gateway_secret_file().empty()) {
    // Principals (x-submarine-principal) are trusted only under this secret; see Admit().
    SUBMARINE_ASSIGN_OR_RETURN(std::string secret,
                               auth::LoadInternalSecret(config_.gateway_secret_file()));
    SetPrincipalCodec(std::make_shared<auth::PrincipalCodec>(std::move(secret)));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  std::string listen = config_.grpc_listen().empty() ? "127.0.0.1:0" : config_.grpc_listen();
  SUBMARINE_ASSIGN_OR_RETURN(auto credentials, ServerCredentials(config_.tls()));
  builder.AddListeningPort(listen, credentials, &port);
  for (auto* s : services_) builder.RegisterService(s);
  if (generic_ != nullptr) builder.RegisterCallbackGenericService(generic_);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  InstallCallInterceptor(builder, enforce_call_policy_);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    return Unavailable(absl::StrCat(process_, ": cannot listen on ", listen));
  }
  grpc_address_ = absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
  if (!config_.metrics_listen().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(metrics_address_, metrics_server_.Start(config_.metrics_listen()));
  }
  for (auto* t : tasks_) {
    auto st = t->Start();
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat(t->TaskName(), ": ", Message(st)));
    }
    started_.push_back(t);
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  g_active = this;
  health_thread_ = std::thread([this] { WatchHealth(); });
  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    stopping = shutdown_requested_;
  }
  if (!config_.ready_file().empty() && !stopping) {
    nlohmann::json ready = {{"grpc", grpc_address_},
                            {"metrics", metrics_address_},
                            {"pid", static_cast<int>(::getpid())}};
    for (const auto& [k, v] : ready_fields_) ready[k] = v;
    SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(config_.ready_file(), ready.dump()));
  }
  log::Get("runner")->info("{} serving gRPC on {}{}", process_, grpc_address_,
                           metrics_address_.empty() ? "" : ", metrics on " + metrics_address_);
  if (g_signal_seen) Shutdown();
  return absl::OkStatus();
}

void ServerRunner::WatchHealth() {
  bool serving = true;
  std::unique_lock lock(mu_);
  while (!shutdown_requested_) {
    bool healthy = true;
    for (auto* t : started_) healthy = healthy && t->Healthy();
    if (healthy != serving) {
      serving = healthy;
      server_->GetHealthCheckService()->SetServingStatus(serving);
      log::Get("runner")->warn("health is now {}", serving ? "SERVING" : "NOT_SERVING");
    }
    cv_.wait_for(lock, std::chrono::milliseconds(250));
  }
}

void ServerRunner::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (shutdown_requested_) return;
    shutdown_requested_ = true;
  }
  cv_.notify_all();
  if (server_) server_->GetHealthCheckService()->SetServingStatus(false);
  for (auto* t : started_) t->BeginStop();
  if (server_) {
    uint32_t grace = config_.shutdown_grace_ms() ? config_.shutdown_grace_ms() : 10000;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace));
  }
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->Stop();
  started_.clear();
  metrics_server_.Stop();
  for (auto it = hooks_.rbegin(); it != hooks_.rend(); ++it) (*it)();
  hooks_.clear();
  {
    std::lock_guard lock(mu_);
    shutdown_done_ = true;
  }
  cv_.notify_all();
}

void ServerRunner::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return shutdown_done_; });
}

int ServerRunner::Run() {
  auto st = Start();
  if (!st.ok()) {
    log::Get("runner")->error("{} failed to start: {}", process_, st.ToString());
    Shutdown();
    return 1;
  }
  Wait();
  if (server_) server_->Wait();
  log::Get("runner")->info("{} stopped", process_);
  return 0;
}

bool LoadConfigFromArgs(int argc, char** argv, google::protobuf::Message* config) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      path = a.substr(9);
    }
  }
  if (path.empty()) {
    if (const char* env = std::getenv("SUBMARINE_CONFIG")) path = env;
  }
  if (path.empty()) {
    std::cerr << argv[0] << ": missing --config FILE (or SUBMARINE_CONFIG)\n";
    return false;
  }
  auto st = config::LoadConfigFile(path, config);
  if (!st.ok()) {
    std::cerr << argv[0] << ": " << Message(st) << "\n";
    return false;
  }
  return true;
}

}  // namespace submarine::rpc
