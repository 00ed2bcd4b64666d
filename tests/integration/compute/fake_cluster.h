#pragma once
// A Kubernetes backend's fake API server (tests/support/fake_kube) and options for it, for the
// conformance suite (wrapped in BackendOnFake) and the Kubernetes tests.

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/compute/kubernetes_backend.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "common/util/wait.h"
#include "tests/integration/compute/backend_conformance.h"
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
  options.metrics_period = std::chrono::milliseconds(100);  // where the fake serves metrics
  return options;
}

// A fake cluster with namespace team-a. With `trainer`, it also serves Kubeflow Trainer, with
// Submarine's runtimes installed from deploy/kubernetes/trainer-runtimes.json and stand-ins for
// Trainer's torch-distributed and xgboost-distributed.
// With `kueue`, it serves Kueue's kinds (stored only: tests write Workload conditions) and runs
// no pods, so that workloads stay pending as Kueue would keep them.
// With `pod_ips`, each pod has an address of its own (127.0.0.N), so that replicas serving one
// port do not collide on this host.
// With `metrics`, it serves the resource metrics API (metrics.k8s.io, as metrics-server), scraping
// the pods' processes every 100 ms.
inline absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> StartServer(
    const std::string& scratch_dir, bool trainer = false, bool kueue = false, bool pod_ips = false,
    bool metrics = false) {
  FakeKubeOptions options;
  options.work_dir = scratch_dir + "/kubelet";
  options.bearer_token = "test-token";
  options.serve_trainer = trainer;
  options.serve_kueue = kueue;
  options.run_pods = !kueue;
  options.distinct_pod_ips = pod_ips;
  options.serve_metrics = metrics;
  options.metrics_resolution_ms = 100;
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

inline constexpr char kFakeClusterImage[] = "registry.example/submarine-task:1";
inline constexpr auto kFakeClusterTimeout = std::chrono::seconds(30);

// The conformance target: a Kubernetes backend on its own fake cluster, with Trainer or not
// (`pod_ips`: as StartServer's).
inline ConformanceTarget FakeClusterTarget(const std::string& name, bool trainer,
                                           bool pod_ips = false) {
  ConformanceTarget target;
  target.name = name;
  target.image = kFakeClusterImage;
  target.make = [trainer, pod_ips](
                    const std::string& scratch_dir) -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto server = StartServer(scratch_dir, trainer, /*kueue=*/false, pod_ips);
    if (!server.ok()) return server.status();
    auto backend = KubernetesBackend::Create(BackendOptions(**server, scratch_dir));
    if (!backend.ok()) return backend.status();
    if ((*backend)->uses_trainer() != trainer) {
      return absl::InternalError("Trainer discovery disagrees with the fake cluster");
    }
    return std::unique_ptr<Backend>(new BackendOnFake(
        std::shared_ptr<FakeKubeApiServer>(std::move(*server)), std::move(*backend)));
  };
  target.timeout = kFakeClusterTimeout;
  return target;
}

// A test with a Kubernetes backend (kube_, also backend_) on its fake cluster (server_), which
// serves the metrics API when kMetrics.
template <bool kTrainer, bool kPodIps = false, bool kMetrics = false>
class FakeClusterTest : public ::testing::Test, public BackendTestBase {
 protected:
  void SetUp() override {
    scratch_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/k8s-backend-",
                            IdGenerator::Secure().RandomHex(6));
    std::filesystem::create_directories(scratch_);
    auto server = StartServer(scratch_, kTrainer, /*kueue=*/false, kPodIps, kMetrics);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto backend = KubernetesBackend::Create(BackendOptions(*server_, scratch_));
    ASSERT_TRUE(backend.ok()) << backend.status();
    ASSERT_EQ((*backend)->uses_trainer(), kTrainer);
    kube_ = backend->get();
    backend_ = std::move(*backend);
    image_ = kFakeClusterImage;
  }
  void TearDown() override {
    TearDownBackend();
    backend_.reset();
    server_.reset();
    if (!HasFailure()) std::filesystem::remove_all(scratch_);
  }

  // Runs one task that exits 3 while the pods' watch is held, waits until the object at
  // owner_path(id) (its Job or TrainJob) says Failed, and returns the workload's first Failed
  // status — seen before the pod's own watch event.
  absl::StatusOr<WorkloadStatus> FailWhileThePodWatchLags(
      const std::function<std::string(const std::string&)>& owner_path) {
    const std::string go = scratch_ + "/go";
    if (mkfifo(go.c_str(), 0600) != 0) return absl::InternalError("mkfifo");
    WorkloadSpec spec = Spec(NewId("lag"), {"/bin/sh", "-c", "read line < \"$0\"; exit 3", go});
    SUBMARINE_RETURN_IF_ERROR(Submit(spec));
    SUBMARINE_RETURN_IF_ERROR(
        WaitFor(
            spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; },
            kFakeClusterTimeout)
            .status());
    server_->HoldWatchEvents("pods", true);
    std::ofstream(go) << "exit\n";  // opening blocks until the task reads: it is running
    auto failed = [&]() {
      auto owner = server_->Get(owner_path(spec.id));
      if (!owner.ok()) return false;
      for (const nlohmann::json& c : owner->value("status", nlohmann::json::object())
                                         .value("conditions", nlohmann::json::array())) {
        if (c.value("type", "") == "Failed" && c.value("status", "") == "True") return true;
      }
      return false;
    };
    if (!WaitUntil(failed, kFakeClusterTimeout)) {
      server_->HoldWatchEvents("pods", false);
      return absl::DeadlineExceededError("its owner never failed");
    }
    auto status = WaitFor(
        spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kFailed; },
        kFakeClusterTimeout);
    server_->HoldWatchEvents("pods", false);
    return status;
  }

  std::string scratch_;
  std::unique_ptr<FakeKubeApiServer> server_;
  KubernetesBackend* kube_ = nullptr;
};

}  // namespace submarine::compute::testing
