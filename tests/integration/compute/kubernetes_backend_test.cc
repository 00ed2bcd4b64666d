// The Kubernetes backend against the fake API server of tests/support/fake_kube: the shared
// conformance suite (the fake's kubelet runs each pod's command as a local process, so exit
// codes, logs and signals are real), then what only Kubernetes has: the manifests (golden
// files), watch expiry in both forms, API errors that must not change any state, a Job deleted
// behind the backend's back, and a restarted backend adopting what runs.

#include "common/compute/kubernetes_backend.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/util/clock.h"
#include "common/util/wait.h"
#include "tests/integration/compute/backend_conformance.h"
#include "tests/integration/compute/fake_cluster.h"

namespace submarine::compute::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr auto kTimeout = kFakeClusterTimeout;
constexpr const char* kImage = kFakeClusterImage;

INSTANTIATE_TEST_SUITE_P(Kubernetes, BackendConformanceTest,
                         ::testing::Values(FakeClusterTarget("Kubernetes", /*trainer=*/false)),
                         ConformanceTargetName);
// Service replicas are StatefulSet pods, each with an address of its own.
INSTANTIATE_TEST_SUITE_P(Kubernetes, ServiceConformance,
                         ::testing::Values(FakeClusterTarget("Kubernetes", /*trainer=*/false,
                                                             /*pod_ips=*/true)),
                         ConformanceTargetName);

// ---- Kubernetes-only behaviour ----

class KubernetesBackendTest : public FakeClusterTest<false> {
 protected:
  std::string JobPath(const std::string& id, const std::string& role = "worker") const {
    return absl::StrCat("/apis/batch/v1/namespaces/team-a/jobs/", id, "-", role);
  }
};

// The manifests Submit creates are what the golden file says (regenerate with
// SUBMARINE_UPDATE_GOLDEN=1 and review the diff).
TEST(KubernetesManifests, MatchTheGoldenFiles) {
  auto manifests =
      KubernetesBackend::Manifests(GoldenPytorchSpec(), "team-a", "registry.example/train:1");
  ASSERT_TRUE(manifests.ok()) << manifests.status();
  std::string got;
  for (const json& m : *manifests) got += m.dump(2) + "\n---\n";
  ExpectGolden(got, "pytorch_workload.json");
}

TEST(KubernetesManifests, NamesKubernetesCannotHoldAreInvalidArguments) {
  WorkloadSpec spec;
  spec.id = "1-starts-with-a-digit";
  spec.roles = {RoleSpec{"worker", 1, {"true"}, {}, {}, "img", 0}};
  auto s = KubernetesBackend::Manifests(spec, "ns", "");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(s.status().message()), "spec.id")) << s.status();

  spec.id = std::string(60, 'a');
  s = KubernetesBackend::Manifests(spec, "ns", "");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(s.status().message()), "spec.roles[0].name")) << s.status();

  spec.id = "fine";
  spec.roles[0].image = "";
  s = KubernetesBackend::Manifests(spec, "ns", "");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(s.status().message()), "spec.roles[0].image")) << s.status();

  spec.roles[0].image = "img";
  spec.secret_env = {{"BAD KEY", "x"}};
  s = KubernetesBackend::Manifests(spec, "ns", "");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(s.status().message()),
                       "spec.secret_env: \"BAD KEY\" cannot be a Secret key"))
      << s.status();
}

TEST_F(KubernetesBackendTest, DistributedSettingsReachEveryReplica) {
  WorkloadSpec spec = Spec(NewId("ddp"),
                           {"/bin/sh", "-c",
                            "printf '%s\\n' \"$MASTER_ADDR:$MASTER_PORT\" \"$WORLD_SIZE\" "
                            "\"$RANK\" \"$SUBMARINE_TASK_INDEX\""},
                           2);
  spec.framework = Framework::kPytorch;
  spec.roles.insert(spec.roles.begin(), spec.roles[0]);
  spec.roles[0].name = "master";
  spec.roles[0].replicas = 1;
  const std::vector<std::string> logs = RunToSuccess(spec, kTimeout);
  const std::string master = absl::StrCat(spec.id, "-master-0.", spec.id, ":23456");
  EXPECT_EQ(logs, (std::vector<std::string>{absl::StrCat(master, "\n3\n0\n0\n"),
                                            absl::StrCat(master, "\n3\n1\n0\n"),
                                            absl::StrCat(master, "\n3\n2\n1\n")}));
}

TEST_F(KubernetesBackendTest, TensorflowReplicasGetTheirTask) {
  WorkloadSpec spec = Spec(NewId("tf"), {"/bin/sh", "-c", "printf '%s' \"$TF_CONFIG\""}, 2);
  spec.framework = Framework::kTensorflow;
  const std::vector<std::string> logs = RunToSuccess(spec, kTimeout);
  ASSERT_EQ(logs.size(), 2u);
  for (int i : {0, 1}) {
    json tf = json::parse(logs[i], nullptr, false);
    ASSERT_TRUE(tf.is_object()) << logs[i];
    EXPECT_EQ(tf["task"], (json{{"type", "worker"}, {"index", i}}));
    EXPECT_EQ(tf["cluster"]["worker"][1], absl::StrCat(spec.id, "-worker-1.", spec.id, ":2222"));
  }
}

TEST_F(KubernetesBackendTest, RetriesUpToMaxRestartsThenFails) {
  WorkloadSpec spec = Spec(NewId("retry"), {"/bin/sh", "-c", "echo attempt; exit 4"});
  spec.roles[0].max_restarts = 2;
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].attempt, 3) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 4);
  EXPECT_TRUE(Contains(s->message, "task worker-0 failed: exit code 4")) << Describe(s);
  auto log = ReadWholeLog(spec.id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "attempt\nattempt\nattempt\n");
}

TEST_F(KubernetesBackendTest, AFailedReplicaStopsTheOthers) {
  WorkloadSpec spec = Spec(
      NewId("one-fails"),
      {"/bin/sh", "-c", "if [ \"$SUBMARINE_TASK_INDEX\" = 1 ]; then exit 3; fi; sleep 600"}, 2);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        return w.phase == Phase::kFailed && IsFinal(w.tasks[0].phase);
      },
      kTimeout + std::chrono::seconds(15));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  auto job = server_->Get(JobPath(spec.id));
  const std::string job_text = job.ok() ? job->dump() : job.status().ToString();
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled) << Describe(s) << "\n" << job_text;
  EXPECT_EQ(s->tasks[1].phase, Phase::kFailed) << Describe(s);
}

// A Job's Failed condition and the failed pod come through separate watches; when the pods'
// watch lags, the verdict still names the task and its exit code (read from the API).
TEST_F(KubernetesBackendTest, AFailureSeenOnTheJobBeforeItsPodStillNamesTheExitCode) {
  auto s = FailWhileThePodWatchLags([this](const std::string& id) { return JobPath(id); });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tasks[0].phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 3) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "task worker-0 failed: exit code 3")) << Describe(s);
}

TEST_F(KubernetesBackendTest, AJobDeletedBehindItsBackFailsTheWorkloadWithAReason) {
  WorkloadSpec spec = Spec(NewId("vanished"), {"sleep", "600"});
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(
      WaitFor(
          spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kTimeout)
          .ok());
  ASSERT_TRUE(kube_->client().Delete(JobPath(spec.id), "Background", 0).ok());
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "deleted outside Submarine")) << Describe(s);
}

TEST_F(KubernetesBackendTest, ApiErrorsChangeNoState) {
  WorkloadSpec spec = Spec(NewId("errors"), {"sleep", "600"});
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kTimeout);
  ASSERT_TRUE(running.ok() && running->phase == Phase::kRunning) << Describe(running);

  // The API server fails every request for a while: calls fail as UNAVAILABLE, and the state
  // read from the informers' copy stays as it was.
  server_->FailRequests(503, 1000);
  EXPECT_EQ(backend_->Stop(spec.id, std::chrono::seconds(1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend_->Submit(Spec(NewId("later"), {"true"})).code(),
            absl::StatusCode::kUnavailable);
  auto during = backend_->Get(spec.id);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->phase, Phase::kRunning);
  server_->FailRequests(503, 0);

  auto after = backend_->Get(spec.id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->phase, Phase::kRunning) << Describe(after);
}

TEST_F(KubernetesBackendTest, ExpiredWatchesRelistInBothForms) {
  for (bool as_http_410 : {false, true}) {
    SCOPED_TRACE(as_http_410 ? "HTTP 410" : "ERROR event");
    WorkloadSpec spec = Spec(NewId("expiry"), {"/bin/sh", "-c", "echo done"});
    server_->ExpireWatchHistory(as_http_410);
    // Changes made while the watches are being renewed are not lost: the relist sees them.
    ASSERT_TRUE(Submit(spec).ok());
    auto s = WaitForFinal(spec.id, kTimeout);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->phase, Phase::kSucceeded) << Describe(s);
  }
}

TEST_F(KubernetesBackendTest, SecretEnvLivesInAnOwnedSecretOnly) {
  WorkloadSpec spec = Spec(NewId("secret"), {"/bin/sh", "-c", "printf '%s' \"$API_TOKEN\""});
  spec.secret_env = {{"API_TOKEN", "s3cr3t-token-value"}};
  EXPECT_EQ(RunToSuccess(spec, kTimeout), std::vector<std::string>{"s3cr3t-token-value"});
  auto secret = server_->Get("/api/v1/namespaces/team-a/secrets/" + spec.id);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ((*secret)["metadata"]["ownerReferences"][0]["name"], spec.id);
  EXPECT_EQ((*secret)["metadata"]["ownerReferences"][0]["kind"], "ConfigMap");
  for (const std::string& path :
       {"/api/v1/namespaces/team-a/configmaps/" + spec.id, JobPath(spec.id)}) {
    auto object = server_->Get(path);
    ASSERT_TRUE(object.ok()) << path << ": " << object.status();
    EXPECT_EQ(object->dump().find("s3cr3t-token-value"), std::string::npos) << object->dump();
  }
  ASSERT_TRUE(backend_->Delete(spec.id, /*keep_logs=*/false).ok());
  EXPECT_TRUE(
      absl::IsNotFound(server_->Get("/api/v1/namespaces/team-a/secrets/" + spec.id).status()));
}

TEST_F(KubernetesBackendTest, ARestartedBackendAdoptsWhatRuns) {
  WorkloadSpec spec = Spec(NewId("adopt"), {"/bin/sh", "-c", "echo started; sleep 600"});
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(
      WaitFor(
          spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kTimeout)
          .ok());
  backend_.reset();  // the service stops; the cluster keeps running
  auto again = KubernetesBackend::Create(BackendOptions(*server_, scratch_));
  ASSERT_TRUE(again.ok()) << again.status();
  kube_ = again->get();
  backend_ = std::move(*again);
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, spec.id);
  EXPECT_EQ((*listed)[0].phase, Phase::kRunning);
  ASSERT_TRUE(backend_->Stop(spec.id, std::chrono::seconds(5)).ok());
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  auto log = ReadWholeLog(spec.id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "started\n");
}

// ---- System metrics (metrics.k8s.io) ----

class KubernetesMetricsTest : public FakeClusterTest<false, false, /*kMetrics=*/true> {
 protected:
  // A task that holds ~50 MiB (written, so resident) and burns CPU until `stop` exists.
  WorkloadSpec BurnSpec(const std::string& stem, const std::string& stop) {
    return Spec(NewId(stem), {"/usr/bin/python3", "-c",
                              "import os, sys\n"
                              "b = b'x' * (50 << 20)\n"
                              "while not os.path.exists(sys.argv[1]): pass\n",
                              stop});
  }
  static bool RunningWithUsage(const WorkloadStatus& w) {
    const auto& u = w.tasks[0].usage;
    return IsFinal(w.phase) || (u && u->memory_bytes >= (50 << 20) && u->cpu_seconds > 0.05);
  }
};

// While a task runs its usage follows metrics-server's figures; once it ended the last figures
// are kept with its final status (and read back so by a restarted backend).
TEST_F(KubernetesMetricsTest, UsageFollowsTheMetricsApiAndIsKeptOnceATaskEnded) {
  const std::string stop = scratch_ + "/stop";
  WorkloadSpec spec = BurnSpec("usage", stop);
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(spec.id, RunningWithUsage, kTimeout);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->phase, Phase::kRunning) << Describe(running);
  const Usage seen = *running->tasks[0].usage;
  EXPECT_LT(seen.memory_bytes, 300 << 20);  // python and its 50 MiB, not the host's memory
  EXPECT_GE(seen.max_memory_bytes, seen.memory_bytes);
  // CPU accumulates sample after sample.
  auto more = WaitFor(
      spec.id,
      [&](const WorkloadStatus& w) {
        return IsFinal(w.phase) ||
               (w.tasks[0].usage && w.tasks[0].usage->cpu_seconds > seen.cpu_seconds + 0.2);
      },
      kTimeout);
  ASSERT_TRUE(more.ok() && more->phase == Phase::kRunning) << Describe(more);
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_TRUE((*listed)[0].tasks[0].usage.has_value());
  EXPECT_GE((*listed)[0].tasks[0].usage->cpu_seconds, more->tasks[0].usage->cpu_seconds);

  std::ofstream(stop) << "stop\n";
  auto final = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(final.ok() && final->phase == Phase::kSucceeded) << Describe(final);
  ASSERT_TRUE(final->tasks[0].usage.has_value()) << Describe(final);
  const Usage last = *final->tasks[0].usage;
  EXPECT_EQ(last.memory_bytes, 0);  // it ended
  EXPECT_GE(last.max_memory_bytes, 50 << 20);
  EXPECT_GE(last.cpu_seconds, more->tasks[0].usage->cpu_seconds);

  backend_.reset();  // the final figures live on the anchor
  auto again = KubernetesBackend::Create(BackendOptions(*server_, scratch_));
  ASSERT_TRUE(again.ok()) << again.status();
  kube_ = again->get();
  backend_ = std::move(*again);
  auto read = backend_->Get(spec.id);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->tasks[0].usage.has_value()) << Describe(read);
  EXPECT_EQ(*read->tasks[0].usage, last);
}

// A metrics API that fails changes nothing: calls succeed, phases stay, usage stays as last seen
// (never absent) and grows again once the API answers.
TEST_F(KubernetesMetricsTest, AFailingMetricsApiChangesNoStateAndFailsNoCall) {
  const std::string stop = scratch_ + "/stop";
  WorkloadSpec spec = BurnSpec("failing", stop);
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(spec.id, RunningWithUsage, kTimeout);
  ASSERT_TRUE(running.ok() && running->phase == Phase::kRunning) << Describe(running);
  const double before = running->tasks[0].usage->cpu_seconds;

  // The next 20 metrics requests (about 2 s of the backend's sampling) fail.
  server_->FailRequests(503, 20, "metrics.k8s.io");
  double last = before;
  int calls = 0;
  absl::Status problem;
  const bool recovered = WaitUntil(
      [&] {
        ++calls;
        auto got = backend_->Get(spec.id);
        auto listed = backend_->List();
        if (!got.ok() || !listed.ok()) {
          problem = got.ok() ? listed.status() : got.status();
          return true;
        }
        const auto& u = got->tasks[0].usage;
        if (got->phase != Phase::kRunning || !u || u->cpu_seconds < last) {
          problem = absl::InternalError(Describe(got));
          return true;
        }
        last = u->cpu_seconds;
        return u->cpu_seconds > before + 0.2;
      },
      kTimeout);
  server_->FailRequests(503, 0);
  ASSERT_TRUE(problem.ok()) << problem;
  EXPECT_TRUE(recovered) << "usage never grew again: " << last << " after " << calls << " calls";
  std::ofstream(stop) << "stop\n";
  auto final = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(final.ok() && final->phase == Phase::kSucceeded) << Describe(final);
  EXPECT_TRUE(final->tasks[0].usage.has_value());
}

// Without the metrics API usage is unknown (absent), never zero.
TEST_F(KubernetesBackendTest, WithoutTheMetricsApiUsageIsAbsent) {
  ASSERT_FALSE(server_->Get("/apis/metrics.k8s.io/v1beta1").ok());
  const std::string stop = scratch_ + "/stop";
  WorkloadSpec spec =
      Spec(NewId("nometrics"), {"/bin/sh", "-c", "while [ ! -e \"$0\" ]; do :; done", stop});
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kTimeout);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_FALSE(running->tasks[0].usage.has_value()) << Describe(running);
  std::ofstream(stop) << "stop\n";
  auto final = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(final.ok() && final->phase == Phase::kSucceeded) << Describe(final);
  EXPECT_FALSE(final->tasks[0].usage.has_value()) << Describe(final);
}

// ---- Service workloads (StatefulSets) ----

class KubernetesServiceTest : public FakeClusterTest<false, /*kPodIps=*/true> {
 protected:
  std::string SetPath(const std::string& id, const std::string& role = "worker") const {
    return absl::StrCat("/apis/apps/v1/namespaces/team-a/statefulsets/", id, "-", role);
  }
  // A service of `replicas` that serve until stopped.
  WorkloadSpec Service(const std::string& stem, int replicas) const {
    WorkloadSpec spec = Spec(NewId(stem), {"/bin/sh", "-c", "echo up; exec sleep 600"}, replicas);
    spec.kind = WorkloadKind::kService;
    return spec;
  }
  static bool Running(const WorkloadStatus& w, size_t replicas) {
    return w.phase == Phase::kRunning && w.tasks.size() == replicas &&
           std::all_of(w.tasks.begin(), w.tasks.end(),
                       [](const TaskStatus& t) { return t.phase == Phase::kRunning; });
  }
};

TEST(KubernetesManifests, AServiceWorkloadIsAStatefulSetPerRole) {
  WorkloadSpec spec;
  spec.id = "svc-0123456789abcdef";
  spec.kind = WorkloadKind::kService;
  spec.env = {{"MODEL", "m1"}};
  spec.secret_env = {{"SUBMARINE_TOKEN", "never-in-a-manifest"}};
  spec.labels = {{"submarine.apache.org/endpoint", "projects/p/endpoints/e"}};
  RoleSpec server{"server", 2, {"python3", "serve.py"}, {}, {}, "registry.example/serve:1", 0};
  server.resources.cpu_millis = 500;
  server.port = 9000;
  server.readiness = ReadinessProbe{"/v2/health/ready", std::chrono::milliseconds(1500)};
  RoleSpec sidecar{"sidecar", 1, {"/bin/sh", "-c", "exec proxy"}, {}, {}, "", 0};
  sidecar.readiness = ReadinessProbe{"", std::chrono::milliseconds(200)};  // TCP
  spec.roles = {server, sidecar};
  auto manifests = KubernetesBackend::Manifests(spec, "team-a", "registry.example/base:1");
  ASSERT_TRUE(manifests.ok()) << manifests.status();
  std::string got;
  for (const json& m : *manifests) got += m.dump(2) + "\n---\n";
  EXPECT_EQ(got.find("never-in-a-manifest"), std::string::npos);
  ExpectGolden(got, "service_workload.json");
}

TEST_F(KubernetesServiceTest, AStatefulSetDeletedBehindItsBackFailsTheWorkloadWithAReason) {
  WorkloadSpec spec = Service("svc-vanished", 1);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return Running(w, 1); }, kTimeout);
  ASSERT_TRUE(s.ok() && Running(*s, 1)) << Describe(s);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadWholeLog(spec.id, kWorker0).value_or("") == "up\n"; }, kTimeout));
  ASSERT_TRUE(kube_->client().Delete(SetPath(spec.id), "Orphan").ok());
  s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "StatefulSet " + spec.id + "-worker was deleted outside"))
      << Describe(s);
  // Its orphaned replica was stopped, not left serving.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto pod = server_->Get("/api/v1/namespaces/team-a/pods/" + spec.id + "-worker-0");
        return absl::IsNotFound(pod.status());
      },
      kTimeout));
  EXPECT_EQ(ReadWholeLog(spec.id, kWorker0).value_or(""), "up\n");
}

// The anchor holds the replicas Scale asked for: a backend restarted half-way through a Scale
// (anchor written, StatefulSet not) finishes it, and a restarted backend keeps to it.
TEST_F(KubernetesServiceTest, AScaleInterruptedBeforeTheStatefulSetIsFinishedAfterARestart) {
  WorkloadSpec spec = Service("svc-adopt", 1);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return Running(w, 1); }, kTimeout);
  ASSERT_TRUE(s.ok() && Running(*s, 1)) << Describe(s);

  backend_.reset();
  // What Scale(worker, 2) writes first, then a crash.
  ASSERT_TRUE(
      server_
          ->Patch("/api/v1/namespaces/team-a/configmaps/" + spec.id,
                  {{"metadata",
                    {{"annotations", {{"submarine.apache.org/replicas", R"({"worker":2})"}}}}}})
          .ok());
  auto again = KubernetesBackend::Create(BackendOptions(*server_, scratch_));
  ASSERT_TRUE(again.ok()) << again.status();
  kube_ = again->get();
  backend_ = std::move(*again);
  s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return Running(w, 2); }, kTimeout);
  ASSERT_TRUE(s.ok() && Running(*s, 2)) << Describe(s);
  auto set = server_->Get(SetPath(spec.id));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)["spec"]["replicas"], 2);
  EXPECT_EQ(s->tasks[0].attempt, 1);  // the first replica ran on, untouched

  // A Scale refused by the API server changes nothing it can see.
  server_->FailRequests(503, 1000);
  EXPECT_EQ(backend_->Scale(spec.id, "worker", 3, std::chrono::seconds(1)).code(),
            absl::StatusCode::kUnavailable);
  server_->FailRequests(503, 0);
  s = backend_->Get(spec.id);
  ASSERT_TRUE(s.ok() && Running(*s, 2)) << Describe(s);
}

// Kueue: Jobs carry the queue label, and while Kueue holds a workload its Workload's conditions
// are the reason it is pending; a cluster without Kueue is refused when a queue is configured.
TEST(KubernetesKueue, TheQueueLabelIsSetAndKueueSaysWhyAWorkloadWaits) {
  const std::string scratch = absl::StrCat(fs::temp_directory_path().string(), "/k8s-kueue-",
                                           IdGenerator::Secure().RandomHex(6));
  fs::create_directories(scratch);
  auto server = StartServer(scratch, /*trainer=*/false, /*kueue=*/true);
  ASSERT_TRUE(server.ok()) << server.status();
  auto options = BackendOptions(**server, scratch);
  options.kueue_queue = "team-a-queue";
  auto backend = KubernetesBackend::Create(options);
  ASSERT_TRUE(backend.ok()) << backend.status();

  WorkloadSpec spec;
  spec.id = "queued";
  spec.roles = {RoleSpec{"worker", 2, {"true"}, {}, {1000, 0, 0}, kImage, 0}};
  ASSERT_TRUE((*backend)->Submit(spec).ok());
  auto job = (*server)->Get("/apis/batch/v1/namespaces/team-a/jobs/queued-worker");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "team-a-queue");
  EXPECT_FALSE((*job)["spec"].value("suspend", false));  // Kueue's webhook suspends, never us

  // What Kueue would make for the Job, and its verdict: no quota yet.
  const std::string workloads = "/apis/kueue.x-k8s.io/v1beta2/namespaces/team-a/workloads";
  auto made = (*server)->Create(
      workloads, {{"apiVersion", "kueue.x-k8s.io/v1beta2"},
                  {"kind", "Workload"},
                  {"metadata",
                   {{"name", "job-queued-worker-1a2b3"},
                    {"labels", {{"kueue.x-k8s.io/job-name", "queued-worker"}}}}},
                  {"spec", {{"queueName", "team-a-queue"}, {"podSets", json::array()}}}});
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string workload = workloads + "/job-queued-worker-1a2b3";
  auto condition = [](const char* type, bool value, const char* reason, const char* message) {
    return json{{"type", type},
                {"status", value ? "True" : "False"},
                {"reason", reason},
                {"message", message},
                {"lastTransitionTime", "2026-12-01T00:00:00Z"}};
  };
  ASSERT_TRUE(
      (*server)
          ->MergePatchStatus(
              workload,
              {{"status",
                {{"conditions",
                  {condition("QuotaReserved", false, "Pending",
                             "couldn't assign flavors to pod set main: insufficient quota for "
                             "cpu in flavor default, 2 more needed")}}}}})
          .ok());
  absl::StatusOr<WorkloadStatus> s;
  EXPECT_TRUE(submarine::WaitUntil(
      [&] {
        s = (*backend)->Get(spec.id);
        return s.ok() && Contains(s->message, "insufficient quota");
      },
      kTimeout));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kPending);
  EXPECT_EQ(s->message,
            "waiting for quota in Kueue queue team-a-queue (Pending: couldn't assign flavors to "
            "pod set main: insufficient quota for cpu in flavor default, 2 more needed)");
  auto listed = (*backend)->List();
  ASSERT_TRUE(listed.ok() && listed->size() == 1u) << listed.status();
  EXPECT_EQ((*listed)[0].message, s->message);

  // Admitted: Kueue has nothing more to say.
  ASSERT_TRUE(
      (*server)
          ->MergePatchStatus(workload, {{"status",
                                         {{"conditions",
                                           {condition("QuotaReserved", true, "QuotaReserved", ""),
                                            condition("Admitted", true, "Admitted", "")}}}}})
          .ok());
  EXPECT_TRUE(submarine::WaitUntil(
      [&] {
        listed = (*backend)->List();
        return listed.ok() && listed->size() == 1u && (*listed)[0].message.empty();
      },
      kTimeout));
  ASSERT_TRUE(listed.ok() && listed->size() == 1u) << listed.status();
  EXPECT_EQ((*listed)[0].message, "");
  backend->reset();
  server->reset();
  fs::remove_all(scratch);

  // A queue named on a cluster without Kueue is a configuration error.
  const std::string plain_scratch = scratch + "-plain";
  fs::create_directories(plain_scratch);
  auto plain = StartServer(plain_scratch);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto plain_options = BackendOptions(**plain, plain_scratch);
  plain_options.kueue_queue = "team-a-queue";
  auto refused = KubernetesBackend::Create(plain_options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(Contains(std::string(refused.status().message()), "is Kueue installed"))
      << refused.status();
  plain->reset();
  fs::remove_all(plain_scratch);
}

}  // namespace
}  // namespace submarine::compute::testing
