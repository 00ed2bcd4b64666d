// The Kubernetes backend on a cluster that serves Kubeflow Trainer (the fake API server plays
// Trainer and JobSet, and its kubelet runs pods as local processes): the shared conformance suite
// again — workloads that fit run as TrainJobs, the others as Indexed Jobs, and both must behave
// alike — then what only the TrainJob path has: the manifest (golden file), which path a workload
// takes, TensorFlow nodes finding their task, a failing node failing the TrainJob and the
// workload (also when the pods' watch lags), stop suspending the TrainJob, and a TrainJob deleted
// behind the backend's back.

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/util/clock.h"
#include "tests/integration/compute/backend_conformance.h"
#include "tests/integration/compute/fake_cluster.h"

namespace submarine::compute::testing {
namespace {

using nlohmann::json;

constexpr auto kTrainJobTimeout = kFakeClusterTimeout;
constexpr char kTrainJobs[] = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs/";

INSTANTIATE_TEST_SUITE_P(KubernetesTrainer, BackendConformanceTest,
                         ::testing::Values(FakeClusterTarget("KubernetesTrainer",
                                                             /*trainer=*/true)),
                         ConformanceTargetName);

using TrainJobBackendTest = FakeClusterTest<true>;

// A PyTorch master + workers of one command is one TrainJob on torch-distributed, its command
// under torchrun (regenerate with SUBMARINE_UPDATE_GOLDEN=1 and review the diff).
TEST(TrainJobManifests, MatchTheGoldenFile) {
  WorkloadSpec spec;
  spec.id = "exp-0123456789abcdef0123-1";
  spec.framework = Framework::kPytorch;
  spec.env = {{"EPOCHS", "3"}};
  RoleSpec master{"master", 1, {"python3", "train.py", "--lr", "0.01"}, {}, {}, "", 0};
  master.resources = {500, 2LL << 30, 1};
  RoleSpec worker = master;
  worker.name = "worker";
  worker.replicas = 2;
  spec.roles = {master, worker};
  trainjob::Runtimes runtimes;
  auto manifests =
      KubernetesBackend::Manifests(spec, "team-a", "registry.example/train:1", &runtimes);
  ASSERT_TRUE(manifests.ok()) << manifests.status();
  ASSERT_EQ(manifests->size(), 2u);  // the anchor and the TrainJob: no Service, no Jobs
  std::string got;
  for (const json& m : *manifests) got += m.dump(2) + "\n---\n";
  ExpectGolden(got, "pytorch_trainjob.json");

  // Roles that differ, or per-replica restarts, need Indexed Jobs.
  spec.roles[1].command = {"python3", "worker.py"};
  manifests = KubernetesBackend::Manifests(spec, "team-a", "registry.example/train:1", &runtimes);
  ASSERT_TRUE(manifests.ok()) << manifests.status();
  EXPECT_EQ(manifests->back()["kind"], "Job");
  spec.roles[1] = master;
  spec.roles[1].name = "worker";
  spec.roles[1].max_restarts = 1;
  manifests = KubernetesBackend::Manifests(spec, "team-a", "registry.example/train:1", &runtimes);
  ASSERT_TRUE(manifests.ok()) << manifests.status();
  EXPECT_EQ(manifests->back()["kind"], "Job");
}

TEST_F(TrainJobBackendTest, AFittingWorkloadRunsAsATrainJobAndTheOthersAsJobs) {
  WorkloadSpec fits = Spec(NewId("fits"), {"/bin/sh", "-c", "echo node $SUBMARINE_TASK_INDEX"}, 2);
  EXPECT_EQ(RunToSuccess(fits, kTrainJobTimeout),
            (std::vector<std::string>{"node 0\n", "node 1\n"}));
  auto tj = server_->Get(absl::StrCat(kTrainJobs, fits.id));
  // Deleted once its verdict was recorded; the Jobs Trainer made were its.
  EXPECT_TRUE(absl::IsNotFound(tj.status())) << (tj.ok() ? tj->dump() : "");
  EXPECT_TRUE(absl::IsNotFound(
      server_->Get(absl::StrCat("/apis/batch/v1/namespaces/team-a/jobs/", fits.id, "-worker"))
          .status()));

  WorkloadSpec retries = Spec(NewId("retries"), {"true"});
  retries.roles[0].max_restarts = 1;
  EXPECT_EQ(RunToSuccess(retries, kTrainJobTimeout), (std::vector<std::string>{""}));
  EXPECT_TRUE(absl::IsNotFound(server_->Get(absl::StrCat(kTrainJobs, retries.id)).status()));
  EXPECT_TRUE(
      server_->Get(absl::StrCat("/apis/batch/v1/namespaces/team-a/jobs/", retries.id, "-worker"))
          .ok());
}

TEST_F(TrainJobBackendTest, TensorflowNodesGetTheirRoleAndTask) {
  // One Ps and two Workers running one command: three nodes, ranked ps first (spec order).
  WorkloadSpec spec = Spec(NewId("tf"), {"/bin/sh", "-c", "printf '%s' \"$TF_CONFIG\""});
  spec.framework = Framework::kTensorflow;
  RoleSpec worker = spec.roles[0];
  spec.roles[0].name = "ps";
  worker.replicas = 2;
  spec.roles.push_back(worker);
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(server_->Get(absl::StrCat(kTrainJobs, spec.id)).ok());
  auto s = WaitForFinal(spec.id, kTrainJobTimeout);
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);
  const std::vector<TaskRef> tasks = {{"ps", 0}, {"worker", 0}, {"worker", 1}};
  for (size_t r = 0; r < tasks.size(); ++r) {
    auto log = ReadWholeLog(spec.id, tasks[r]);
    ASSERT_TRUE(log.ok()) << log.status();
    json tf = json::parse(*log, nullptr, false);
    ASSERT_TRUE(tf.is_object()) << *log;
    EXPECT_EQ(tf["task"], (json{{"type", tasks[r].role}, {"index", tasks[r].index}}));
    EXPECT_EQ(tf["cluster"]["worker"][1], absl::StrCat(spec.id, "-node-0-2.", spec.id, ":2222"));
    EXPECT_EQ(tf["cluster"]["ps"][0], absl::StrCat(spec.id, "-node-0-0.", spec.id, ":2222"));
  }
}

TEST_F(TrainJobBackendTest, AFailingNodeFailsTheTrainJobAndTheWorkload) {
  WorkloadSpec spec = Spec(
      NewId("fails"),
      {"/bin/sh", "-c", "if [ \"$SUBMARINE_TASK_INDEX\" = 1 ]; then exit 3; fi; sleep 600"}, 2);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        return w.phase == Phase::kFailed && IsFinal(w.tasks[0].phase);
      },
      kTrainJobTimeout + std::chrono::seconds(15));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "task worker-1 failed: exit code 3")) << Describe(s);
  EXPECT_EQ(s->tasks[1].phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled) << Describe(s);
}

// The TrainJob's Failed condition and the failed pod come through separate watches; when the
// pods' watch lags, the verdict still names the task and its exit code (read from the API).
TEST_F(TrainJobBackendTest, AFailureSeenOnTheTrainJobBeforeItsPodStillNamesTheExitCode) {
  auto s =
      FailWhileThePodWatchLags([](const std::string& id) { return absl::StrCat(kTrainJobs, id); });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tasks[0].phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 3) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "task worker-0 failed: exit code 3")) << Describe(s);
}

TEST_F(TrainJobBackendTest, StopSuspendsTheTrainJobAndKillsItsNodes) {
  WorkloadSpec spec = Spec(NewId("stop"), {"/bin/sh", "-c", "echo up; sleep 600"}, 2);
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(WaitFor(
                  spec.id,
                  [](const WorkloadStatus& w) {
                    return w.tasks[0].phase == Phase::kRunning &&
                           w.tasks[1].phase == Phase::kRunning;
                  },
                  kTrainJobTimeout)
                  .ok());
  ASSERT_TRUE(backend_->Stop(spec.id, std::chrono::seconds(2)).ok());
  auto tj = server_->Get(absl::StrCat(kTrainJobs, spec.id));
  ASSERT_TRUE(tj.ok()) << tj.status();
  EXPECT_EQ((*tj)["spec"]["suspend"], true);
  auto s = WaitForFinal(spec.id, kTrainJobTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  auto log = ReadWholeLog(spec.id, {"worker", 1});
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "up\n");
}

TEST_F(TrainJobBackendTest, ATrainJobDeletedBehindItsBackFailsTheWorkloadWithAReason) {
  WorkloadSpec spec = Spec(NewId("vanished"), {"sleep", "600"});
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(WaitFor(
                  spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; },
                  kTrainJobTimeout)
                  .ok());
  ASSERT_TRUE(kube_->client().Delete(absl::StrCat(kTrainJobs, spec.id), "Background", 0).ok());
  auto s = WaitForFinal(spec.id, kTrainJobTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "TrainJob " + spec.id + " was deleted outside Submarine"))
      << Describe(s);
}

}  // namespace
}  // namespace submarine::compute::testing
