// The experiment service with a Kubernetes compute cluster (the fake API server of
// tests/support/fake_kube, whose kubelet runs pods as local processes): an experiment that names
// the cluster runs there as Jobs through every state to SUCCEEDED with its logs; one that fails
// says which task and why; deleting it removes its objects from the cluster; an unknown cluster
// is refused naming the ones configured.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/util/wait.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;

class ExperimentKubernetesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("experiment-k8s");
    FakeKubeOptions options;
    options.work_dir = dir_ + "/kubelet";
    options.bearer_token = "k8s-test-token";
    std::filesystem::create_directories(options.work_dir);
    auto server = FakeKubeApiServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    kube_ = std::move(*server);
    ASSERT_TRUE(kube_
                    ->Create("/api/v1/namespaces", {{"apiVersion", "v1"},
                                                    {"kind", "Namespace"},
                                                    {"metadata", {{"name", "ml-jobs"}}}})
                    .ok());
    const std::string kubeconfig = dir_ + "/kubeconfig";
    ASSERT_TRUE(kube_->WriteKubeconfig(kubeconfig, "ml-jobs").ok());
    auto p = StartExperimentService(
        nullptr, absl::StrCat("kubernetes:\n  - name: kubernetes\n    kubeconfig: ", kubeconfig,
                              "\n    default_image: registry.example/train:1\n    logs_dir: ", dir_,
                              "/k8s-logs\n"));
    ASSERT_TRUE(p.ok()) << p.status();
    svc_ = std::move(*p);
  }

  static v1::Experiment OnKubernetes(const std::string& cmd, int replicas = 1) {
    v1::Experiment e;
    e.mutable_spec()->mutable_meta()->set_name("k8s");
    e.mutable_spec()->mutable_meta()->set_cmd(cmd);
    e.mutable_spec()->set_compute_cluster("kubernetes");
    (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(replicas);
    return e;
  }

  grpc::Status Create(const v1::Experiment& e, v1::Experiment* out) {
    v1::CreateExperimentRequest req;
    req.set_parent("projects/p");
    *req.mutable_experiment() = e;
    return svc_->stub->CreateExperiment(ExperimentCtx().get(), req, out);
  }

  v1::Experiment WaitFinal(const std::string& name) {
    v1::Experiment e;
    bool ok = WaitFor(
        [&] {
          v1::GetExperimentRequest req;
          req.set_name(name);
          return svc_->stub->GetExperiment(ExperimentCtx().get(), req, &e).ok() &&
                 e.state() >= v1::SUCCEEDED;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(ok) << name << " stayed " << v1::State_Name(e.state()) << ": " << e.state_reason();
    return e;
  }

  std::string Logs(const std::string& name, const std::string& task) {
    v1::GetExperimentLogsRequest req;
    req.set_name(name);
    req.set_task(task);
    v1::ExperimentLogs out;
    grpc::Status st = svc_->stub->GetExperimentLogs(ExperimentCtx().get(), req, &out);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return out.data();
  }

  std::string dir_;
  std::unique_ptr<FakeKubeApiServer> kube_;
  std::unique_ptr<ExperimentProcess> svc_;
};

TEST_F(ExperimentKubernetesTest, RunsAsJobsThroughEveryStateWithItsLogs) {
  v1::Experiment created;
  ASSERT_TRUE(
      Create(OnKubernetes("echo \"replica $SUBMARINE_TASK_INDEX of $SUBMARINE_EXPERIMENT\"", 2),
             &created)
          .ok());
  v1::Experiment done = WaitFinal(created.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.state_reason();
  std::vector<v1::State> states;
  for (const auto& h : done.history()) states.push_back(h.state());
  EXPECT_EQ(states, (std::vector<v1::State>{v1::PENDING, v1::ACCEPTED, v1::CREATED, v1::RUNNING,
                                            v1::SUCCEEDED}));
  EXPECT_EQ(done.reproducibility().backend(), "kubernetes");
  EXPECT_EQ(done.reproducibility().compute_cluster(), "computeClusters/kubernetes");
  ASSERT_EQ(done.tasks_size(), 2);
  EXPECT_EQ(Logs(done.name(), "worker-1"), absl::StrCat("replica 1 of ", done.name(), "\n"));

  // The Job is in the cluster, in the configured namespace, labelled as Submarine's.
  auto jobs = kube_->List("/apis/batch/v1/namespaces/ml-jobs/jobs");
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ((*jobs)["items"].size(), 1u);
  EXPECT_EQ((*jobs)["items"][0]["metadata"]["labels"]["app.kubernetes.io/managed-by"], "submarine");

  // Deleting the experiment removes its objects from the cluster.
  v1::DeleteExperimentRequest del;
  del.set_name(done.name());
  v1::DeleteExperimentResponse deleted;
  ASSERT_TRUE(svc_->stub->DeleteExperiment(ExperimentCtx().get(), del, &deleted).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto anchors = kube_->List("/api/v1/namespaces/ml-jobs/configmaps");
        auto left = kube_->List("/apis/batch/v1/namespaces/ml-jobs/jobs");
        return anchors.ok() && left.ok() && (*anchors)["items"].empty() && (*left)["items"].empty();
      },
      std::chrono::seconds(30)));
}

TEST_F(ExperimentKubernetesTest, AFailedTaskFailsTheExperimentSayingWhich) {
  v1::Experiment created;
  ASSERT_TRUE(Create(OnKubernetes("echo boom >&2; exit 7"), &created).ok());
  v1::Experiment done = WaitFinal(created.name());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_TRUE(absl::StrContains(done.state_reason(), "exit code 7")) << done.state_reason();
  EXPECT_EQ(Logs(done.name(), "worker-0"), "boom\n");
}

TEST_F(ExperimentKubernetesTest, AnUnknownClusterIsRefusedNamingTheConfiguredOnes) {
  v1::Experiment e = OnKubernetes("true");
  e.mutable_spec()->set_compute_cluster("gpu-farm");
  v1::Experiment out;
  grpc::Status st = Create(e, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "experiment.spec.compute_cluster"))
      << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "\"kubernetes\", \"local\""))
      << st.error_message();
}

}  // namespace
}  // namespace submarine::testing
