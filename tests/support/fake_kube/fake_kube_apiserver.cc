#include "tests/support/fake_kube/fake_kube_apiserver.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/api_handler.h"
#include "tests/support/fake_kube/event_recorder.h"
#include "tests/support/fake_kube/http_server.h"
#include "tests/support/fake_kube/job_controller.h"
#include "tests/support/fake_kube/kubelet.h"
#include "tests/support/fake_kube/metrics_server.h"
#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/resource_catalog.h"
#include "tests/support/fake_kube/statefulset_controller.h"
#include "tests/support/fake_kube/trainer_controller.h"

namespace submarine::testing {
namespace {

using fake_kube::HttpHeaders;
using nlohmann::json;

// Keeps what the API answered, for the direct-access methods.
class CapturingResponder : public fake_kube::HttpResponder {
 public:
  void Respond(int status, const std::string& content_type, const std::string& body,
               const HttpHeaders&) override {
    status_ = status;
    body_ = body;
    (void)content_type;
  }
  bool StartStream(int status, const std::string&, const HttpHeaders&) override {
    status_ = status;
    return true;
  }
  bool WriteChunk(const std::string& data) override {
    body_ += data;
    return true;
  }
  bool PeerClosed() override { return true; }
  int status() const { return status_; }
  const std::string& body() const { return body_; }

 private:
  int status_ = 500;
  std::string body_;
};

constexpr const char* kInitialNamespaces[] = {"default", "kube-system", "kube-public",
                                              "kube-node-lease"};

}  // namespace

absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> FakeKubeApiServer::Start(
    FakeKubeOptions options) {
  if (options.run_pods && options.work_dir.empty()) {
    return absl::InvalidArgumentError("FakeKubeOptions.work_dir is required when run_pods is set");
  }
  std::unique_ptr<FakeKubeApiServer> server(new FakeKubeApiServer());
  server->options_ = options;
  server->catalog_ = std::make_unique<fake_kube::ResourceCatalog>(
      options.serve_trainer, options.serve_kueue, options.serve_metrics);
  server->store_ = std::make_unique<fake_kube::ObjectStore>(
      *server->catalog_,
      fake_kube::ObjectStore::Options{.watch_history = options.watch_history,
                                      .graceful_pod_deletion = options.run_pods});
  server->events_ = std::make_unique<fake_kube::EventRecorder>(*server->store_);
  const auto* namespaces = server->catalog_->Find("", "v1", "namespaces");
  for (const char* ns : kInitialNamespaces) {
    auto created = server->store_->Create(*namespaces, "", json{{"metadata", {{"name", ns}}}});
    if (!created.ok()) return created.status();
  }
  FakeKubeApiServer* raw = server.get();
  server->http_ = std::make_unique<fake_kube::HttpServer>(
      [raw](const fake_kube::HttpRequest& request, fake_kube::HttpResponder& responder) {
        raw->handler_->HandleHttp(request, responder);
      });
  // Bound first (the kubelet gives pods the port), served once the handler exists.
  auto port = server->http_->Bind();
  if (!port.ok()) return port.status();
  server->port_ = *port;
  if (options.run_pods) {
    server->kubelet_ = std::make_unique<fake_kube::Kubelet>(
        *server->store_, fake_kube::Kubelet::Options{.work_dir = options.work_dir,
                                                     .api_port = server->port_,
                                                     .distinct_pod_ips = options.distinct_pod_ips,
                                                     .events = server->events_.get()});
  }
  server->handler_ = std::make_unique<fake_kube::ApiHandler>(
      *server->store_, server->kubelet_.get(),
      fake_kube::ApiOptions{.bearer_token = options.bearer_token,
                            .aggregated_discovery = options.aggregated_discovery,
                            .bookmark_interval = absl::Milliseconds(options.bookmark_interval_ms)});
  server->handler_->SetServerAddress(absl::StrCat("127.0.0.1:", server->port_));
  if (options.serve_metrics) {
    server->metrics_ = std::make_unique<fake_kube::MetricsServer>(
        *server->store_, server->kubelet_.get(),
        absl::Milliseconds(std::max(options.metrics_resolution_ms, 10)));
    server->handler_->SetMetrics(server->metrics_.get());
  }
  if (server->kubelet_) {
    if (auto s = server->kubelet_->Start(); !s.ok()) return s;
  }
  server->job_controller_ =
      std::make_unique<fake_kube::JobController>(*server->store_, options.run_pods);
  server->job_controller_->Start();
  server->statefulset_controller_ =
      std::make_unique<fake_kube::StatefulSetController>(*server->store_, *server->events_);
  server->statefulset_controller_->Start();
  if (options.serve_trainer) {
    server->trainer_controller_ = std::make_unique<fake_kube::TrainerController>(*server->store_);
    server->trainer_controller_->Start();
  }
  if (server->metrics_) server->metrics_->Start();
  // Last: the controllers subscribe to the store before any request can change it.
  server->http_->Serve();
  return server;
}

FakeKubeApiServer::~FakeKubeApiServer() {
  if (handler_) handler_->Stop();
  if (store_) store_->Stop();
  if (http_) http_->Stop();
  if (metrics_) metrics_->Stop();
  if (trainer_controller_) trainer_controller_->Stop();
  if (statefulset_controller_) statefulset_controller_->Stop();
  if (job_controller_) job_controller_->Stop();
  if (kubelet_) kubelet_->Stop();
}

std::string FakeKubeApiServer::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

absl::Status FakeKubeApiServer::WriteKubeconfig(const std::string& path,
                                                const std::string& namespace_) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  out << "apiVersion: v1\n"
      << "kind: Config\n"
      << "clusters:\n"
      << "- name: fake\n"
      << "  cluster:\n"
      << "    server: " << url() << "\n"
      << "users:\n"
      << "- name: fake\n"
      << "  user:\n";
  if (!options_.bearer_token.empty()) {
    out << "    token: " << json(options_.bearer_token).dump() << "\n";
  } else {
    out << "    {}\n";
  }
  out << "contexts:\n"
      << "- name: fake\n"
      << "  context:\n"
      << "    cluster: fake\n"
      << "    user: fake\n"
      << "    namespace: " << json(namespace_).dump() << "\n"
      << "current-context: fake\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<json> FakeKubeApiServer::Call(const std::string& method, const std::string& target,
                                             const std::string& body,
                                             const std::string& content_type) const {
  fake_kube::HttpRequest request;
  request.method = method;
  request.target = target;
  size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q != std::string::npos) request.query = target.substr(q + 1);
  request.headers = {{"content-type", content_type}, {"accept", "application/json"}};
  request.body = body;
  CapturingResponder responder;
  handler_->Serve(request, responder);
  json answer = json::parse(responder.body(), nullptr, false);
  if (responder.status() >= 400) {
    if (answer.is_object() && answer.value("kind", "") == "Status") {
      return fake_kube::ApiError(responder.status(), answer.value("reason", ""),
                                 answer.value("message", ""),
                                 answer.contains("details") ? answer["details"] : json());
    }
    return fake_kube::ApiError(responder.status(), fake_kube::ReasonForCode(responder.status()),
                               responder.body());
  }
  if (answer.is_discarded()) return absl::InternalError("the fake answered something not JSON");
  return answer;
}

absl::StatusOr<json> FakeKubeApiServer::Get(const std::string& api_path) const {
  return Call("GET", api_path, "", "application/json");
}

absl::StatusOr<json> FakeKubeApiServer::List(const std::string& collection_path) const {
  return Call("GET", collection_path, "", "application/json");
}

absl::StatusOr<json> FakeKubeApiServer::MergePatchStatus(const std::string& api_path,
                                                         const json& patch) {
  std::string path = api_path;
  if (!absl::EndsWith(path, "/status")) {
    auto result = Call("PATCH", path + "/status", patch.dump(), "application/merge-patch+json");
    // A kind without a status subresource: the path itself is not found (not the object).
    if (result.ok() || !absl::StrContains(result.status().message(),
                                          "the server could not find the requested resource")) {
      return result;
    }
  }
  return Call("PATCH", path, patch.dump(), "application/merge-patch+json");
}

absl::StatusOr<json> FakeKubeApiServer::Create(const std::string& collection_path,
                                               const json& object) {
  return Call("POST", collection_path, object.dump(), "application/json");
}

absl::StatusOr<json> FakeKubeApiServer::Patch(const std::string& api_path, const json& patch,
                                              const std::string& content_type) {
  return Call("PATCH", api_path, patch.dump(), content_type);
}

absl::StatusOr<json> FakeKubeApiServer::Delete(const std::string& api_path, const json& options) {
  return Call("DELETE", api_path, options.dump(), "application/json");
}

void FakeKubeApiServer::ExpireWatchHistory(bool as_http_410) { store_->ExpireHistory(as_http_410); }

void FakeKubeApiServer::FailRequests(int http_status, int count, std::string path_substring) {
  handler_->FailRequests(http_status, count, std::move(path_substring));
}

void FakeKubeApiServer::HoldWatchEvents(const std::string& plural, bool hold) {
  handler_->HoldWatchEvents(plural, hold);
}

int64_t FakeKubeApiServer::requests_served() const { return handler_->requests_served(); }

}  // namespace submarine::testing
