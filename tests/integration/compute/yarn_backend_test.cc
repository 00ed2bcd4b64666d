// The YARN backend against the fake ResourceManager (tests/support/fake_yarn, which runs every
// component instance as a local process, so exit codes, logs and signals are real): first the
// conformance suite every backend passes, then what only YARN has: the service request (golden
// file), RM errors that must change nothing, a restarted backend adopting what runs, the failure
// message naming the component instance, in-container restarts and instances that ended before
// the backend saw them.

#include "common/compute/yarn_backend.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/util/clock.h"
#include "common/util/wait.h"
#include "tests/integration/compute/backend_conformance.h"
#include "tests/support/fake_yarn/fake_yarn_rm.h"
#include "tests/support/process.h"

namespace submarine::compute::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using submarine::testing::FakeYarnOptions;
using submarine::testing::FakeYarnRm;

constexpr auto kYarnTimeout = std::chrono::seconds(30);

// A port nothing listens on now, on any address: the fake's nodes (127.0.0.N) serve it.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

YarnBackend::Options YarnOptions(const FakeYarnRm& rm, const std::string& scratch_dir) {
  YarnBackend::Options options;
  options.rm_url = rm.url();
  options.user = "alice";
  options.queue = "research";
  options.logs_dir = scratch_dir + "/logs";
  options.registry_domain = "yarn.test";
  options.nodemanager_url = absl::StrCat("http://{host}:", rm.port());
  options.service_port = FreePort();
  return options;
}

absl::StatusOr<std::unique_ptr<FakeYarnRm>> StartRm(const std::string& scratch_dir,
                                                    bool forget = false) {
  FakeYarnOptions options;
  options.work_dir = scratch_dir + "/nodemanager";
  options.forget_containers_when_finished = forget;
  return FakeYarnRm::Start(options);
}

ConformanceTarget YarnTarget() {
  ConformanceTarget target;
  target.name = "Yarn";
  target.make = [](const std::string& scratch_dir) -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto rm = StartRm(scratch_dir);
    if (!rm.ok()) return rm.status();
    auto backend = YarnBackend::Create(YarnOptions(**rm, scratch_dir));
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<Backend>(
        new BackendOnFake(std::shared_ptr<FakeYarnRm>(std::move(*rm)), std::move(*backend)));
  };
  target.timeout = kYarnTimeout;
  return target;
}

INSTANTIATE_TEST_SUITE_P(Yarn, BackendConformanceTest, ::testing::Values(YarnTarget()),
                         ConformanceTargetName);
INSTANTIATE_TEST_SUITE_P(Yarn, ServiceConformance, ::testing::Values(YarnTarget()),
                         ConformanceTargetName);

// ---- YARN-only behaviour ----

class YarnBackendTest : public ::testing::Test, public BackendTestBase {
 protected:
  void SetUp() override { StartWith(false); }
  void StartWith(bool forget) {
    scratch_ = submarine::testing::MakeTempDir("yarn-backend");
    auto rm = StartRm(scratch_, forget);
    ASSERT_TRUE(rm.ok()) << rm.status();
    rm_ = std::move(*rm);
    Restart();
  }
  void Restart() {
    backend_.reset();
    auto backend = YarnBackend::Create(YarnOptions(*rm_, scratch_));
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
  }
  void TearDown() override {
    TearDownBackend();
    backend_.reset();
    rm_.reset();
    if (!HasFailure()) fs::remove_all(scratch_);
  }

  std::string scratch_;
  std::unique_ptr<FakeYarnRm> rm_;
};

// The service Submit POSTs is what the golden file says; the worker's command holds quotes.
TEST(YarnServiceRequest, MatchesTheGoldenFile) {
  WorkloadSpec spec = GoldenPytorchSpec();
  spec.roles[1].command = {"/bin/sh", "-c", "python3 train.py 'quoted arg'"};
  YarnBackend::Options options;
  options.user = "alice";
  options.queue = "research";
  options.registry_domain = "ycluster.example";
  auto request = YarnBackend::ServiceRequest(spec, options);
  ASSERT_TRUE(request.ok()) << request.status();
  ExpectGolden(request->dump(2) + "\n", "yarn_service.json");
}

TEST(YarnServiceRequest, NamesYarnCannotHoldAreInvalidArguments) {
  WorkloadSpec spec;
  spec.id = "1-starts-with-a-digit";
  spec.roles = {RoleSpec{"worker", 1, {"true"}, {}, {}, "", 0}};
  YarnBackend::Options options;
  options.user = "alice";
  auto s = YarnBackend::ServiceRequest(spec, options);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(s.status().message()), "spec.id")) << s.status();
}

// A service: restart_policy ALWAYS, the readiness check on ${THIS_HOST}, one replica per node,
// the port in SUBMARINE_PORT and the prelude that counts attempts.
TEST(YarnServiceRequest, AServiceMatchesTheGoldenFile) {
  WorkloadSpec spec;
  spec.id = "notebook-0123456789abcdef";
  spec.kind = WorkloadKind::kService;
  spec.labels = {{"submarine.notebook", "projects/p/notebooks/n"}};
  spec.secret_env = {{"TOKEN", "s3cret"}};
  RoleSpec server{"server", 2, {"jupyter", "lab", "--port=$SUBMARINE_PORT"}, {}, {}, "", 0};
  server.port = 8888;
  server.readiness = ReadinessProbe{"/api/status", std::chrono::milliseconds(2500)};
  RoleSpec sidecar{"sidecar", 1, {"/bin/sh", "-c", "exec proxy"}, {}, {}, "proxy:1", 0};
  sidecar.readiness = ReadinessProbe{"", std::chrono::milliseconds(10000)};
  spec.roles = {server, sidecar};
  YarnBackend::Options options;
  options.user = "alice";
  options.service_port = 9000;
  auto request = YarnBackend::ServiceRequest(spec, options);
  ASSERT_TRUE(request.ok()) << request.status();
  ExpectGolden(request->dump(2) + "\n", "yarn_serving_service.json");
}

TEST_F(YarnBackendTest, TheRmReceivesOneComponentPerRoleWithRestartPolicyNever) {
  WorkloadSpec spec = Spec(NewId("shape"), {"true"}, 2);
  spec.roles.push_back(spec.roles[0]);
  spec.roles[1].name = "ps";
  spec.roles[1].replicas = 1;
  spec.roles[1].resources = {1500, 3LL << 20, 0};
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);
  ASSERT_EQ(rm_->created().size(), 1u);
  const json body = rm_->created()[0];
  EXPECT_EQ(body["name"], spec.id);
  EXPECT_EQ(body["queue"], "research");
  ASSERT_EQ(body["components"].size(), 2u);
  EXPECT_EQ(body["components"][0]["number_of_containers"], 2);
  EXPECT_EQ(body["components"][1]["name"], "ps");
  EXPECT_EQ(body["components"][1]["restart_policy"], "NEVER");
  EXPECT_EQ(body["components"][1]["resource"], (json{{"cpus", 2}, {"memory", "3"}}));
  EXPECT_EQ(s->tasks.size(), 3u);
}

TEST_F(YarnBackendTest, RendezvousUsesRegistryDnsNames) {
  WorkloadSpec spec = Spec(NewId("ddp"),
                           {"/bin/sh", "-c",
                            "printf '%s\\n' \"$MASTER_ADDR:$MASTER_PORT\" \"$WORLD_SIZE\" "
                            "\"$RANK\" \"$SUBMARINE_TASK_INDEX\""},
                           2);
  spec.framework = Framework::kPytorch;
  spec.roles.insert(spec.roles.begin(), spec.roles[0]);
  spec.roles[0].name = "master";
  spec.roles[0].replicas = 1;
  const std::vector<std::string> logs = RunToSuccess(spec, kYarnTimeout);
  const std::string master = absl::StrCat("master-0.", spec.id, ".alice.yarn.test:23456");
  EXPECT_EQ(logs, (std::vector<std::string>{absl::StrCat(master, "\n3\n0\n0\n"),
                                            absl::StrCat(master, "\n3\n1\n0\n"),
                                            absl::StrCat(master, "\n3\n2\n1\n")}));
}

TEST_F(YarnBackendTest, TensorflowInstancesGetTheirTask) {
  WorkloadSpec spec = Spec(NewId("tf"), {"/bin/sh", "-c", "printf '%s' \"$TF_CONFIG\""}, 2);
  spec.framework = Framework::kTensorflow;
  const std::vector<std::string> logs = RunToSuccess(spec, kYarnTimeout);
  ASSERT_EQ(logs.size(), 2u);
  for (int i : {0, 1}) {
    json tf = json::parse(logs[i], nullptr, false);
    ASSERT_TRUE(tf.is_object()) << logs[i];
    EXPECT_EQ(tf["task"], (json{{"type", "worker"}, {"index", i}}));
    EXPECT_EQ(tf["cluster"]["worker"][1],
              absl::StrCat("worker-1.", spec.id, ".alice.yarn.test:2222"));
  }
}

TEST_F(YarnBackendTest, TheFailureNamesTheComponentInstanceAndExitCodeAndStopsTheOthers) {
  WorkloadSpec spec = Spec(
      NewId("one-fails"),
      {"/bin/sh", "-c", "if [ \"$SUBMARINE_TASK_INDEX\" = 1 ]; then exit 3; fi; sleep 600"}, 2);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        return w.phase == Phase::kFailed && IsFinal(w.tasks[0].phase);
      },
      kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message,
                       "task worker-1 failed: exit code 3 (component instance "
                       "worker-1, container container_"))
      << s->message;
  EXPECT_EQ(s->tasks[1].exit_code, 3);
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled) << Describe(s);
}

TEST_F(YarnBackendTest, FailedAttemptsAreRerunInTheContainerUpToMaxRestarts) {
  WorkloadSpec spec =
      Spec(NewId("retry"), {"/bin/sh", "-c", "echo \"attempt $SUBMARINE_TASK_ATTEMPT\"; exit 4"});
  spec.roles[0].max_restarts = 2;
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 4);
  auto log = ReadWholeLog(spec.id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "attempt 1\nattempt 2\nattempt 3\n");
}

TEST_F(YarnBackendTest, RmErrorsAreUnavailableAndChangeNoState) {
  WorkloadSpec spec = Spec(NewId("errors"), {"sleep", "600"});
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kYarnTimeout);
  ASSERT_TRUE(running.ok() && running->phase == Phase::kRunning) << Describe(running);

  rm_->FailRequests(500, 1000);
  EXPECT_EQ(backend_->Get(spec.id).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend_->Stop(spec.id, std::chrono::seconds(1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend_->Delete(spec.id, true).code(), absl::StatusCode::kUnavailable);
  const WorkloadSpec later = Spec(NewId("later"), {"true"});
  EXPECT_EQ(backend_->Submit(later).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend_->List().status().code(), absl::StatusCode::kUnavailable);
  rm_->FailRequests(500, 0);

  auto after = backend_->Get(spec.id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->phase, Phase::kRunning) << Describe(after);
  EXPECT_TRUE(absl::IsNotFound(backend_->Get(later.id).status()));
  // Submitting again once the RM is back runs it.
  EXPECT_TRUE(RunToSuccess(later, kYarnTimeout).size() == 1u);
}

TEST_F(YarnBackendTest, ARefusedConnectionIsUnavailable) {
  YarnBackend::Options options = YarnOptions(*rm_, scratch_);
  const int port = rm_->port();
  rm_.reset();  // nothing listens there any more
  options.rm_url = absl::StrCat("http://127.0.0.1:", port);
  auto backend = YarnBackend::Create(options);
  ASSERT_TRUE(backend.ok());
  EXPECT_EQ((*backend)->Submit(Spec(NewId("refused"), {"true"})).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(YarnBackendTest, ARestartedBackendAdoptsWhatRuns) {
  WorkloadSpec spec = Spec(NewId("adopt"), {"/bin/sh", "-c", "echo started; sleep 600"});
  spec.labels = {{"submarine.experiment", "projects/p/experiments/e"}};
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto log = backend_->ReadLog(spec.id, kWorker0, 0, 100);
        return log.ok() && log->data == "started\n";
      },
      kYarnTimeout));
  Restart();  // the service restarts; the cluster keeps running
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, spec.id);
  EXPECT_EQ((*listed)[0].phase, Phase::kRunning);
  EXPECT_EQ((*listed)[0].labels, spec.labels);
  ASSERT_TRUE(backend_->Stop(spec.id, std::chrono::seconds(5)).ok());
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  auto log = ReadWholeLog(spec.id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "started\n");
}

TEST_F(YarnBackendTest, AServiceDestroyedBehindItsBackFailsTheWorkloadWithAReason) {
  WorkloadSpec spec = Spec(NewId("vanished"), {"sleep", "600"});
  ASSERT_TRUE(Submit(spec).ok());
  ASSERT_TRUE(
      WaitFor(
          spec.id, [](const WorkloadStatus& w) { return w.phase == Phase::kRunning; }, kYarnTimeout)
          .ok());
  YarnBackend::Options other = YarnOptions(*rm_, scratch_ + "/elsewhere");
  auto intruder = YarnBackend::Create(other);
  ASSERT_TRUE(intruder.ok());
  ASSERT_TRUE((*intruder)->Delete(spec.id, false).ok());
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "destroyed outside Submarine")) << Describe(s);
}

TEST_F(YarnBackendTest, ASubmissionTheRmAcceptedButThatWasNotRecordedIsAdopted) {
  WorkloadSpec spec = Spec(NewId("crash"), {"/bin/sh", "-c", "echo ran"});
  ASSERT_TRUE(Submit(spec).ok());
  // As if the service had died between the RM's 202 and writing its marker.
  ASSERT_TRUE(fs::remove(absl::StrCat(scratch_, "/logs/", spec.id, "/submitted")));
  Restart();
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded) << Describe(s);
  EXPECT_EQ(rm_->created().size(), 1u);
}

TEST_F(YarnBackendTest, ALogTheNodeManagerNoLongerHasIsSaidAndDoesNotBlockTheStatus) {
  WorkloadSpec spec = Spec(NewId("nolog"), {"/bin/sh", "-c", "echo lost; exit 2"});
  rm_->FailRequests(404, 1000, "/containerlogs/");
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 2);
  EXPECT_TRUE(Contains(s->tasks[0].message, "its log was gone from the NodeManager"))
      << Describe(s);
  auto log = backend_->ReadLog(spec.id, kWorker0, 0, 100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->data, "");
  EXPECT_TRUE(log->complete);
}

TEST_F(YarnBackendTest, SecretsStayOutOfLogsDirAndSurviveASubmitRetriedAfterAnRmError) {
  WorkloadSpec spec = Spec(NewId("secret-retry"), {"/bin/sh", "-c", "printf '%s' \"$TOKEN\""});
  spec.secret_env = {{"TOKEN", "t0ken-value"}};
  rm_->FailRequests(503, 1, "/app/v1/services");
  ASSERT_EQ(Submit(spec).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RunToSuccess(spec, kYarnTimeout), std::vector<std::string>{"t0ken-value"});
  for (const auto& entry : fs::recursive_directory_iterator(scratch_ + "/logs")) {
    if (!entry.is_regular_file() || entry.path().extension() == ".log") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_FALSE(Contains(text.str(), "t0ken-value")) << entry.path();
  }
}

// A real RM lists no containers once a service's ApplicationMaster has exited: an instance that
// ended unseen takes the service's outcome.
class YarnForgetfulRmTest : public YarnBackendTest {
 protected:
  void SetUp() override { StartWith(true); }
};

TEST_F(YarnForgetfulRmTest, InstancesThatEndedUnseenTakeTheServiceOutcome) {
  WorkloadSpec ok = Spec(NewId("unseen-ok"), {"true"});
  WorkloadSpec bad = Spec(NewId("unseen-bad"), {"/bin/sh", "-c", "exit 5"});
  ASSERT_TRUE(Submit(ok).ok());
  ASSERT_TRUE(Submit(bad).ok());
  auto s = WaitForFinal(ok.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded) << Describe(s);
  EXPECT_EQ(s->tasks[0].exit_code, 0);
  s = WaitForFinal(bad.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "worker-0")) << Describe(s);
}

// ---- Service workloads: what the conformance suite does not see ----

// A service of `replicas` replicas that serve nothing and are ready once started.
WorkloadSpec SleepingService(const std::string& id, int replicas) {
  WorkloadSpec spec;
  spec.id = id;
  spec.kind = WorkloadKind::kService;
  RoleSpec role{
      "worker", replicas, {"/bin/sh", "-c", "echo up $SUBMARINE_TASK_INDEX; exec sleep 600"},
      {},       {},       "",
      0};
  spec.roles.push_back(role);
  return spec;
}

bool AllRunningAndReady(const WorkloadStatus& w, size_t replicas) {
  return w.phase == Phase::kRunning && w.tasks.size() == replicas &&
         std::all_of(w.tasks.begin(), w.tasks.end(), [](const TaskStatus& t) {
           return t.phase == Phase::kRunning && t.ready && t.attempt == 1;
         });
}

TEST_F(YarnBackendTest, AnRmErrorDuringScaleChangesNothing) {
  WorkloadSpec spec = SleepingService(NewId("svc-flex-error"), 1);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return AllRunningAndReady(w, 1); }, kYarnTimeout);
  ASSERT_TRUE(s.ok() && AllRunningAndReady(*s, 1)) << Describe(s);

  rm_->FailRequests(500, 1000, "/components/");
  EXPECT_EQ(backend_->Scale(spec.id, "worker", 3, std::chrono::seconds(1)).code(),
            absl::StatusCode::kUnavailable);
  rm_->FailRequests(500, 0);
  s = backend_->Get(spec.id);
  ASSERT_TRUE(s.ok() && s->tasks.size() == 1) << Describe(s);
  // The RM runs one container still, and a restarted backend sees one replica too.
  Restart();
  s = backend_->Get(spec.id);
  ASSERT_TRUE(s.ok() && AllRunningAndReady(*s, 1)) << Describe(s);

  ASSERT_TRUE(backend_->Scale(spec.id, "worker", 2, std::chrono::seconds(1)).ok());
  s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return AllRunningAndReady(w, 2); }, kYarnTimeout);
  ASSERT_TRUE(s.ok() && AllRunningAndReady(*s, 2)) << Describe(s);
  // The replicas are on nodes of their own: distinct hosts, one port.
  EXPECT_NE(s->tasks[0].host, s->tasks[1].host);
  EXPECT_NE(s->tasks[0].endpoint, s->tasks[1].endpoint);
}

TEST_F(YarnBackendTest, ARestartedBackendAdoptsARunningService) {
  WorkloadSpec spec = SleepingService(NewId("svc-adopt"), 2);
  spec.labels = {{"submarine.notebook", "projects/p/notebooks/n"}};
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id, [](const WorkloadStatus& w) { return AllRunningAndReady(w, 2); }, kYarnTimeout);
  ASSERT_TRUE(s.ok() && AllRunningAndReady(*s, 2)) << Describe(s);
  const std::vector<TaskStatus> before = s->tasks;
  for (int index : {0, 1}) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto chunk = backend_->ReadLog(spec.id, TaskRef{"worker", index}, 0, 100);
          return chunk.ok() && chunk->data == absl::StrCat("up ", index, "\n");
        },
        kYarnTimeout));
  }

  Restart();  // the service restarts; the cluster keeps running
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].labels, spec.labels);
  ASSERT_TRUE(AllRunningAndReady((*listed)[0], 2)) << Describe((*listed)[0]);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ((*listed)[0].tasks[i].endpoint, before[i].endpoint);
  // The adopted service scales, and its replica scaled away keeps its log.
  ASSERT_TRUE(backend_->Scale(spec.id, "worker", 1, std::chrono::seconds(1)).ok());
  s = backend_->Get(spec.id);
  ASSERT_TRUE(s.ok() && s->tasks.size() == 1) << Describe(s);
  std::string log;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto chunk = backend_->ReadLog(spec.id, TaskRef{"worker", 1}, 0, 100);
        log = chunk.ok() ? chunk->data : chunk.status().ToString();
        return chunk.ok() && chunk->complete;
      },
      kYarnTimeout))
      << log;
  EXPECT_EQ(log, "up 1\n");
  ASSERT_TRUE(backend_->Stop(spec.id, std::chrono::seconds(1)).ok());
  s = WaitForFinal(spec.id, kYarnTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  auto kept = ReadWholeLog(spec.id, kWorker0);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "up 0\n");
}

TEST_F(YarnBackendTest, AReplicaNotReadySaysWhatTheAmLoggedAboutItsCheck) {
  // Nothing listens on the port: the AM's HTTP check is refused, and says so.
  WorkloadSpec spec = SleepingService(NewId("svc-refused"), 1);
  spec.roles[0].readiness = ReadinessProbe{"/healthz", std::chrono::milliseconds(100)};
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        return w.tasks.size() == 1 && Contains(w.tasks[0].message, "GET /healthz");
      },
      kYarnTimeout);
  ASSERT_TRUE(s.ok() && s->tasks.size() == 1) << Describe(s);
  EXPECT_EQ(s->tasks[0].phase, Phase::kRunning);
  EXPECT_FALSE(s->tasks[0].ready);
  EXPECT_TRUE(Contains(s->tasks[0].message, "not ready: GET /healthz: java.net.ConnectException"))
      << Describe(s);
  ASSERT_EQ(rm_->created().size(), 1u);
  const json component = rm_->created()[0]["components"][0];
  EXPECT_EQ(component["restart_policy"], "ALWAYS");
  EXPECT_EQ(component["readiness_check"]["type"], "HTTP");
}

}  // namespace
}  // namespace submarine::compute::testing
