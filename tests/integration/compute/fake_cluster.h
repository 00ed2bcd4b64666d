#pragma once
// A Kubernetes backend on its own fake API server (tests/support/fake_kube), for the conformance
// suite and the Kubernetes tests: the backend owns the server through FakeClusterBackend.

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/compute/kubernetes_backend.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"

namespace submarine::compute::testing {

using submarine::testing::FakeKubeApiServer;
using submarine::testing::FakeKubeOptions;

// One fake API server per test backend: the backend owns it through this wrapper.
class FakeClusterBackend : public Backend {
 public:
  FakeClusterBackend(std::unique_ptr<FakeKubeApiServer> server,
                     std::unique_ptr<KubernetesBackend> backend)
      : server_(std::move(server)), backend_(std::move(backend)) {}
  ~FakeClusterBackend() override {
    backend_.reset();  // stops watching before the server goes
  }
  std::string Kind() const override { return backend_->Kind(); }
  absl::Status Submit(const WorkloadSpec& spec) override { return backend_->Submit(spec); }
  absl::StatusOr<WorkloadStatus> Get(const std::string& id) override { return backend_->Get(id); }
  absl::StatusOr<std::vector<WorkloadStatus>> List() override { return backend_->List(); }
  absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) override {
    return backend_->Stop(id, grace);
  }
  absl::Status Delete(const std::string& id, bool keep_logs) override {
    return backend_->Delete(id, keep_logs);
  }
  absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task, int64_t offset,
                                   int64_t max_bytes) override {
    return backend_->ReadLog(id, task, offset, max_bytes);
  }

 private:
  std::unique_ptr<FakeKubeApiServer> server_;
  std::unique_ptr<KubernetesBackend> backend_;
};

inline KubernetesBackend::Options BackendOptions(const FakeKubeApiServer& server,
                                                 const std::string& scratch_dir) {
  KubernetesBackend::Options options;
  options.cluster.server = server.url();
  options.cluster.token = "test-token";
  options.namespace_ = "team-a";
  options.logs_dir = scratch_dir + "/logs";
  options.sync_timeout = std::chrono::seconds(10);
  return options;
}

// A fake cluster with namespace team-a. With `trainer`, it also serves Kubeflow Trainer, with
// Submarine's runtimes installed from deploy/kubernetes/trainer-runtimes.json and stand-ins for
// Trainer's torch-distributed and xgboost-distributed.
// With `kueue`, it serves Kueue's kinds (stored only: tests write Workload conditions) and runs
// no pods, so that workloads stay pending as Kueue would keep them.
inline absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> StartServer(
    const std::string& scratch_dir, bool trainer = false, bool kueue = false) {
  FakeKubeOptions options;
  options.work_dir = scratch_dir + "/kubelet";
  options.bearer_token = "test-token";
  options.serve_trainer = trainer;
  options.serve_kueue = kueue;
  options.run_pods = !kueue;
  std::filesystem::create_directories(options.work_dir);
  auto server = FakeKubeApiServer::Start(options);
  if (!server.ok()) return server.status();
  // Namespaces are the cluster admin's: the backend expects its namespace to exist.
  auto ns = (*server)->Create(
      "/api/v1/namespaces",
      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team-a"}}}});
  if (!ns.ok()) return ns.status();
  if (trainer) {
    const std::string runtimes = "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes";
    std::ifstream in(std::string(SUBMARINE_SOURCE_DIR) +
                     "/deploy/kubernetes/trainer-runtimes.json");
    nlohmann::json list = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!list.is_object()) return absl::InternalError("trainer-runtimes.json is not JSON");
    for (const char* upstream : {"torch-distributed", "xgboost-distributed"}) {
      nlohmann::json r = list["items"][0];
      r["metadata"] = {{"name", upstream}};
      r["spec"]["mlPolicy"] = {{"numNodes", 1}};
      r["spec"]["mlPolicy"][std::string(upstream) == "torch-distributed" ? "torch" : "xgboost"] =
          nlohmann::json::object();
      list["items"].push_back(r);
    }
    for (const nlohmann::json& r : list["items"]) {
      auto made = (*server)->Create(runtimes, r);
      if (!made.ok()) return made.status();
    }
  }
  return server;
}

}  // namespace submarine::compute::testing
