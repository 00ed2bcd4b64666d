#pragma once
// A Kubernetes backend's fake API server (tests/support/fake_kube) and options for it, for the
// conformance suite (wrapped in BackendOnFake) and the Kubernetes tests.

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
