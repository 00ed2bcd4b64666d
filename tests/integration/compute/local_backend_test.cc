// The local backend: the conformance suite, then what only a local backend can be asked (its
// files, its processes, its environment).
#include "common/compute/local_backend.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/compute/task_files.h"
#include "common/util/wait.h"
#include "nlohmann/json.hpp"
#include "tests/integration/compute/backend_conformance.h"
#include "tests/support/process.h"

namespace submarine::compute::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr auto kTimeout = std::chrono::seconds(30);

std::string SupervisorPath() {
  return absl::StrCat(submarine::testing::BinDir(), "/submarine-task-supervisor");
}

LocalBackend::Options OptionsFor(const std::string& scratch_dir) {
  LocalBackend::Options options;
  options.root_dir = scratch_dir + "/root";
  options.supervisor_path = SupervisorPath();
  return options;
}

ConformanceTarget LocalTarget() {
  ConformanceTarget target;
  target.name = "Local";
  target.make = [](const std::string& scratch_dir) -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto backend = LocalBackend::Create(OptionsFor(scratch_dir));
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<Backend>(std::move(*backend));
  };
  target.timeout = kTimeout;
  return target;
}

INSTANTIATE_TEST_SUITE_P(Local, BackendConformanceTest, ::testing::Values(LocalTarget()),
                         ConformanceTargetName);
INSTANTIATE_TEST_SUITE_P(Local, ServiceConformance, ::testing::Values(LocalTarget()),
                         ConformanceTargetName);

// A process counts as gone once it no longer exists or is a zombie nobody reaped yet.
bool Gone(pid_t pid) {
  auto st = local::ReadProcStat(pid);
  return !st || st->state == 'Z' || st->state == 'X';
}

// Reads "<pid> <pid> ..." that a task wrote to `file` (atomically, with mv) once it is there.
std::vector<pid_t> WaitForPids(const std::string& file, size_t count) {
  std::vector<pid_t> pids;
  WaitUntil(
      [&] {
        auto text = local::ReadSmallFile(file);
        if (!text.ok()) return false;
        pids.clear();
        for (absl::string_view word :
             absl::StrSplit(*text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
          int pid = 0;
          if (absl::SimpleAtoi(word, &pid)) pids.push_back(pid);
        }
        return pids.size() == count;
      },
      kTimeout);
  return pids;
}

class LocalBackendTest : public ::testing::Test, public BackendTestBase {
 protected:
  void SetUp() override {
    scratch_dir_ = submarine::testing::MakeTempDir("local-backend");
    options_ = OptionsFor(scratch_dir_);
  }

  void TearDown() override {
    TearDownBackend();
    backend_.reset();
    if (!HasFailure()) fs::remove_all(scratch_dir_);
  }

  void Open() {
    auto backend = LocalBackend::Create(options_);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
  }

  std::string WorkDir(const std::string& id, const TaskRef& task) const {
    return absl::StrCat(options_.root_dir, "/workloads/", id, "/work/", task.role, "-", task.index);
  }

  // Submits a task that runs a shell with a sleep in the background (same process group) and
  // reports their pids and its parent's, the supervisor's; returns {shell, sleep, supervisor}.
  std::vector<pid_t> StartPidReporter(const std::string& id) {
    EXPECT_TRUE(Submit(Spec(id, {"/bin/sh", "-c",
                                 "sleep 600 & echo \"$$ $! $PPID\" > ids.tmp && mv ids.tmp ids; "
                                 "wait"}))
                    .ok());
    return WaitForPids(WorkDir(id, kWorker0) + "/ids", 3);
  }

  std::string scratch_dir_;
  LocalBackend::Options options_;
};

TEST_F(LocalBackendTest, OptionsAreValidated) {
  LocalBackend::Options bad = options_;
  bad.root_dir = "";
  EXPECT_EQ(LocalBackend::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = options_;
  bad.supervisor_path = scratch_dir_ + "/missing";
  EXPECT_EQ(LocalBackend::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = options_;
  bad.gpus = {"0", "1", "0"};
  EXPECT_EQ(LocalBackend::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.gpus = {"0,1"};
  EXPECT_EQ(LocalBackend::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// The service restarts: a new backend over the same directory sees the running task, and its
// end.
TEST_F(LocalBackendTest, ANewInstanceAdoptsRunningTasks) {
  Open();
  const std::string id = NewId("adopt");
  const std::string go = scratch_dir_ + "/go";
  WorkloadSpec spec =
      Spec(id, {"/bin/sh", "-c", "while [ ! -e \"$GO\" ]; do sleep 0.05; done; echo finished"});
  spec.env = {{"GO", go}};
  ASSERT_TRUE(Submit(spec).ok());
  auto first = WaitFor(
      id, [](const WorkloadStatus& s) { return s.phase == Phase::kRunning; }, kTimeout);
  ASSERT_TRUE(first.ok() && first->phase == Phase::kRunning);

  backend_.reset();
  Open();
  auto adopted = backend_->Get(id);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->phase, Phase::kRunning);
  ASSERT_EQ(adopted->tasks.size(), 1u);
  EXPECT_EQ(adopted->tasks[0].attempt, 1);
  EXPECT_EQ(adopted->tasks[0].start_time, first->tasks[0].start_time);
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, id);

  std::ofstream(go).put('\n');
  auto done = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->phase, Phase::kSucceeded) << done->message;
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "finished\n");
}

// The secrets a running task reads (BackendConformanceTest.UpdatedSecrets...) are private to the
// workload's user: a 0700 directory of 0600 files.
TEST_F(LocalBackendTest, SecretsDirIsPrivateToTheWorkloadsUser) {
  Open();
  const std::string id = NewId("secrets");
  WorkloadSpec spec = Spec(id, {"/bin/sh", "-c", "cat \"$SUBMARINE_SECRETS_DIR/TOKEN\""});
  spec.secret_env = {{"TOKEN", "one"}};
  ASSERT_TRUE(Submit(spec).ok());
  auto done = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->phase, Phase::kSucceeded) << Describe(done);
  EXPECT_EQ(ReadWholeLog(id, kWorker0).value_or(""), "one");
  const std::string dir = absl::StrCat(options_.root_dir, "/workloads/", id, "/secrets");
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir + "/TOKEN").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A service outlives its backend too: a new instance sees the replica ready on the same
// endpoint, in the same attempt, and scales it.
TEST_F(LocalBackendTest, ANewInstanceAdoptsARunningServiceAndScalesIt) {
  Open();
  const std::string id = NewId("svc-adopt");
  WorkloadSpec spec = Spec(id, {"/bin/sh", "-c",
                                "echo \"$SUBMARINE_HOST:$SUBMARINE_PORT\"; exec python3 -m "
                                "http.server \"$SUBMARINE_PORT\" --bind \"$SUBMARINE_HOST\""});
  spec.kind = WorkloadKind::kService;
  spec.roles[0].readiness = ReadinessProbe{"", std::chrono::milliseconds(50)};  // TCP
  ASSERT_TRUE(Submit(spec).ok());
  auto first = WaitFor(
      id, [](const WorkloadStatus& s) { return s.tasks.size() == 1 && s.tasks[0].ready; },
      kTimeout);
  ASSERT_TRUE(first.ok() && first->tasks.size() == 1 && first->tasks[0].ready) << Describe(first);
  const std::string endpoint = first->tasks[0].endpoint;
  auto log = ReadWholeLog(id, kWorker0);
  EXPECT_EQ(log.value_or(""), endpoint + "\n");  // SUBMARINE_HOST:SUBMARINE_PORT

  backend_.reset();
  Open();
  auto adopted = backend_->Get(id);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->phase, Phase::kRunning);
  ASSERT_EQ(adopted->tasks.size(), 1u);
  EXPECT_TRUE(adopted->tasks[0].ready);
  EXPECT_EQ(adopted->tasks[0].endpoint, endpoint);
  EXPECT_EQ(adopted->tasks[0].attempt, 1);
  ASSERT_TRUE(backend_->Scale(id, "worker", 2, std::chrono::seconds(1)).ok());
  auto scaled = WaitFor(
      id,
      [](const WorkloadStatus& s) {
        return s.tasks.size() == 2 && s.tasks[0].ready && s.tasks[1].ready;
      },
      kTimeout);
  ASSERT_TRUE(scaled.ok() && scaled->tasks.size() == 2 && scaled->tasks[1].ready)
      << Describe(scaled);
}

// kill -9 of a service replica's supervisor: the replica is started again under a new one (the
// next attempt, the same endpoint), instead of failing the service.
TEST_F(LocalBackendTest, AServiceReplicaWhoseSupervisorWasKilledIsStartedAgain) {
  Open();
  const std::string id = NewId("svc-orphan");
  WorkloadSpec spec = Spec(id, {"/bin/sh", "-c",
                                "exec python3 -m http.server \"$SUBMARINE_PORT\" --bind "
                                "\"$SUBMARINE_HOST\""});
  spec.kind = WorkloadKind::kService;
  spec.roles[0].readiness = ReadinessProbe{"/", std::chrono::milliseconds(50)};
  ASSERT_TRUE(Submit(spec).ok());
  auto first = WaitFor(
      id, [](const WorkloadStatus& s) { return s.tasks.size() == 1 && s.tasks[0].ready; },
      kTimeout);
  ASSERT_TRUE(first.ok() && first->tasks.size() == 1 && first->tasks[0].ready) << Describe(first);
  const std::string task_dir =
      absl::StrCat(options_.root_dir, "/workloads/", id, "/tasks/worker-0");
  auto record = local::SupervisorRecordFromJson(
      local::ReadSmallFile(task_dir + "/" + local::kSupervisorFile).value_or(""));
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_EQ(::kill(record->supervisor.pid, SIGKILL), 0);
  EXPECT_TRUE(WaitUntil([&] { return Gone(record->child_pid); }, kTimeout));

  auto again = WaitFor(
      id,
      [](const WorkloadStatus& s) {
        return s.tasks.size() == 1 && s.tasks[0].attempt == 2 && s.tasks[0].ready;
      },
      kTimeout);
  ASSERT_TRUE(again.ok() && again->tasks.size() == 1 && again->tasks[0].ready) << Describe(again);
  EXPECT_EQ(again->phase, Phase::kRunning);
  EXPECT_EQ(again->tasks[0].endpoint, first->tasks[0].endpoint);
  auto now = local::SupervisorRecordFromJson(
      local::ReadSmallFile(task_dir + "/" + local::kSupervisorFile).value_or(""));
  ASSERT_TRUE(now.ok());
  EXPECT_NE(now->supervisor.pid, record->supervisor.pid);
}

TEST_F(LocalBackendTest, DeleteKillsEverythingTheTaskStarted) {
  Open();
  const std::string id = NewId("doomed");
  std::vector<pid_t> pids = StartPidReporter(id);
  ASSERT_EQ(pids.size(), 3u);
  ASSERT_TRUE(backend_->Delete(id, /*keep_logs=*/false).ok());
  EXPECT_TRUE(WaitUntil([&] { return Gone(pids[0]) && Gone(pids[1]) && Gone(pids[2]); }, kTimeout));
  EXPECT_FALSE(fs::exists(absl::StrCat(options_.root_dir, "/workloads/", id)));
  EXPECT_FALSE(fs::exists(absl::StrCat(options_.root_dir, "/logs/", id)));
}

// kill -9 of a supervisor: the task fails with the reason, and nothing of it keeps running —
// neither the command (PR_SET_PDEATHSIG) nor what it started in its group (the backend).
TEST_F(LocalBackendTest, AKilledSupervisorFailsItsTaskAndTakesTheGroupAlong) {
  Open();
  const std::string id = NewId("orphan");
  std::vector<pid_t> pids = StartPidReporter(id);
  ASSERT_EQ(pids.size(), 3u);
  const pid_t shell = pids[0], sleeper = pids[1], supervisor = pids[2];
  auto supervisor_stat = local::ReadProcStat(supervisor);
  ASSERT_TRUE(supervisor_stat.has_value());
  EXPECT_EQ(supervisor_stat->session, supervisor) << "the supervisor leads its own session";
  EXPECT_EQ(local::ReadProcStat(sleeper)->pgrp, shell) << "the task has its own process group";

  ASSERT_EQ(::kill(supervisor, SIGKILL), 0);
  auto s = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed);
  EXPECT_EQ(s->tasks[0].message, "the task supervisor exited without recording a status");
  EXPECT_TRUE(Contains(s->message, "worker-0")) << s->message;
  EXPECT_TRUE(Contains(s->message, "the task supervisor exited without recording a status"));
  EXPECT_TRUE(WaitUntil([&] { return Gone(shell) && Gone(sleeper); }, kTimeout))
      << "left running: shell " << shell << " " << !Gone(shell) << ", sleep " << sleeper << " "
      << !Gone(sleeper);

  // The verdict is recorded: it holds for a new instance too.
  backend_.reset();
  Open();
  auto again = backend_->Get(id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->phase, Phase::kFailed);
}

TEST_F(LocalBackendTest, DistributedSettingsForTwoWorkers) {
  Open();
  const std::string script =
      "import json, os\n"
      "keys = ['TF_CONFIG', 'MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK',\n"
      "        'DMLC_TRACKER_URI', 'DMLC_TRACKER_PORT', 'DMLC_TASK_ID', 'DMLC_NUM_WORKER',\n"
      "        'DMLC_ROLE', 'CUDA_VISIBLE_DEVICES']\n"
      "print(json.dumps({k: os.environ.get(k) for k in keys}))\n";
  auto run = [&](Framework framework) {
    WorkloadSpec spec = Spec(NewId("framework"), {"/usr/bin/python3", "-c", script}, 2);
    spec.framework = framework;
    std::vector<json> out;
    for (const std::string& log : RunToSuccess(spec, kTimeout)) out.push_back(json::parse(log));
    return out;
  };

  auto tf = run(Framework::kTensorflow);
  ASSERT_EQ(tf.size(), 2u);
  json cluster;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(tf[i]["TF_CONFIG"].is_string());
    json config = json::parse(tf[i]["TF_CONFIG"].get<std::string>());
    EXPECT_EQ(config["task"], (json{{"type", "worker"}, {"index", i}}));
    if (i == 0) cluster = config["cluster"];
    EXPECT_EQ(config["cluster"], cluster) << "every task sees the same cluster";
    EXPECT_TRUE(tf[i]["MASTER_ADDR"].is_null());
  }
  ASSERT_EQ(cluster.size(), 1u);
  ASSERT_EQ(cluster["worker"].size(), 2u);
  const std::string a = cluster["worker"][0], b = cluster["worker"][1];
  EXPECT_NE(a, b);
  for (const std::string& address : {a, b}) {
    int port = 0;
    ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    ASSERT_TRUE(absl::SimpleAtoi(address.substr(10), &port)) << address;
    EXPECT_GT(port, 0);
  }

  auto torch = run(Framework::kPytorch);
  ASSERT_EQ(torch.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(torch[i]["MASTER_ADDR"], "127.0.0.1");
    EXPECT_EQ(torch[i]["MASTER_PORT"], torch[0]["MASTER_PORT"]);
    EXPECT_EQ(torch[i]["WORLD_SIZE"], "2");
    EXPECT_EQ(torch[i]["RANK"], std::to_string(i));
    EXPECT_EQ(torch[i]["LOCAL_RANK"], "0");
    EXPECT_TRUE(torch[i]["TF_CONFIG"].is_null());
  }
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(torch[0]["MASTER_PORT"].get<std::string>(), &port) && port > 0);

  auto xgb = run(Framework::kXgboost);
  ASSERT_EQ(xgb.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(xgb[i]["DMLC_TRACKER_URI"], "127.0.0.1");
    EXPECT_EQ(xgb[i]["DMLC_TRACKER_PORT"], xgb[0]["DMLC_TRACKER_PORT"]);
    EXPECT_EQ(xgb[i]["DMLC_TASK_ID"], std::to_string(i));
    EXPECT_EQ(xgb[i]["DMLC_NUM_WORKER"], "2");
    EXPECT_EQ(xgb[i]["DMLC_ROLE"], "worker");
    EXPECT_TRUE(xgb[i]["MASTER_ADDR"].is_null());
  }
  EXPECT_TRUE(absl::SimpleAtoi(xgb[0]["DMLC_TRACKER_PORT"].get<std::string>(), &port) && port > 0);

  auto plain = run(Framework::kPlain);
  ASSERT_EQ(plain.size(), 2u);
  for (const char* key : {"TF_CONFIG", "MASTER_ADDR", "RANK", "DMLC_TASK_ID"}) {
    EXPECT_TRUE(plain[0][key].is_null()) << key;
  }
  EXPECT_EQ(plain[0]["CUDA_VISIBLE_DEVICES"], "") << "no GPU asked for, none visible";
}

TEST_F(LocalBackendTest, AMasterRoleHoldsRankZero) {
  Open();
  WorkloadSpec spec = Spec(NewId("ranks"), {"/bin/sh", "-c", "echo \"$RANK/$WORLD_SIZE\""}, 2);
  spec.framework = Framework::kPytorch;
  RoleSpec master = spec.roles[0];
  master.name = "master";
  master.replicas = 1;
  spec.roles.push_back(master);  // listed after the workers, ranked first
  EXPECT_EQ(RunToSuccess(spec, kTimeout), (std::vector<std::string>{"1/3\n", "2/3\n", "0/3\n"}));
}

TEST_F(LocalBackendTest, GpusComeFromTheConfiguredList) {
  options_.gpus = {"GPU-a", "GPU-b", "GPU-c"};
  Open();
  WorkloadSpec spec = Spec(NewId("gpus"), {"/bin/sh", "-c", "echo \"[$CUDA_VISIBLE_DEVICES]\""}, 2);
  spec.roles[0].resources.gpus = 1;
  RoleSpec ps = spec.roles[0];
  ps.name = "ps";
  ps.replicas = 1;
  ps.resources.gpus = 0;
  spec.roles.push_back(ps);
  EXPECT_EQ(RunToSuccess(spec, kTimeout),
            (std::vector<std::string>{"[GPU-a]\n", "[GPU-b]\n", "[]\n"}));

  WorkloadSpec greedy = Spec(NewId("greedy"), {"true"}, 2);
  greedy.roles[0].resources.gpus = 2;
  absl::Status refused = backend_->Submit(greedy);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(refused.message()), "spec.roles[0].resources")) << refused;
  EXPECT_TRUE(absl::IsNotFound(backend_->Get(greedy.id).status()));
}

TEST_F(LocalBackendTest, AFailedTaskIsRestartedUpToMaxRestarts) {
  Open();
  // Fails on its first attempt, succeeds on its second (the marker survives in the work dir).
  WorkloadSpec flaky = Spec(NewId("flaky"), {"/bin/sh", "-c",
                                             "echo \"attempt $SUBMARINE_TASK_ATTEMPT\"; "
                                             "[ -e marker ] && exit 0; touch marker; exit 3"});
  flaky.roles[0].max_restarts = 1;
  ASSERT_TRUE(Submit(flaky).ok());
  auto s = WaitForFinal(flaky.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded) << s->message;
  EXPECT_EQ(s->tasks[0].attempt, 2);
  EXPECT_EQ(s->tasks[0].exit_code, 0);
  auto log = ReadWholeLog(flaky.id, kWorker0);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "attempt 1\nattempt 2\n") << "one log across attempts";

  WorkloadSpec broken = Spec(NewId("broken"), {"/bin/sh", "-c", "exit 3"});
  broken.roles[0].max_restarts = 2;
  ASSERT_TRUE(Submit(broken).ok());
  s = WaitForFinal(broken.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed);
  EXPECT_EQ(s->tasks[0].attempt, 3);
  EXPECT_EQ(s->tasks[0].exit_code, 3);
}

TEST_F(LocalBackendTest, OneFailedTaskFailsTheWorkloadAndStopsTheOthers) {
  Open();
  WorkloadSpec spec = Spec(NewId("fail-fast"), {"sleep", "600"});
  RoleSpec failing = spec.roles[0];
  failing.name = "evaluator";
  failing.command = {"/bin/sh", "-c", "exit 4"};
  spec.roles.push_back(failing);
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& s) {
        return std::all_of(s.tasks.begin(), s.tasks.end(),
                           [](const TaskStatus& t) { return IsFinal(t.phase); });
      },
      kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed);
  EXPECT_EQ(s->message, "task evaluator-0 failed: exit code 4");
  ASSERT_EQ(s->tasks.size(), 2u);
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled);
  EXPECT_EQ(s->tasks[1].phase, Phase::kFailed);
}

TEST_F(LocalBackendTest, ACommandThatCannotRunFailsWithTheReasonInItsLog) {
  Open();
  const std::string id = NewId("missing");
  ASSERT_TRUE(Submit(Spec(id, {"no-such-program-anywhere", "x"})).ok());
  auto s = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed);
  EXPECT_EQ(s->tasks[0].exit_code, 127);
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(Contains(*log, "cannot run no-such-program-anywhere")) << *log;
}

TEST_F(LocalBackendTest, EachReplicaRunsInItsOwnDirectoryUnlessTheSpecNamesOne) {
  Open();
  WorkloadSpec spec = Spec(NewId("cwd"), {"/bin/sh", "-c", "pwd; ls"}, 2);
  std::vector<std::string> logs = RunToSuccess(spec, kTimeout);
  ASSERT_EQ(logs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(logs[i], fs::canonical(WorkDir(spec.id, {"worker", i})).string() + "\n");
  }
  const std::string shared = scratch_dir_ + "/shared";
  fs::create_directories(shared);
  WorkloadSpec named = Spec(NewId("cwd"), {"/bin/sh", "-c", "pwd"});
  named.working_dir = shared;
  EXPECT_EQ(RunToSuccess(named, kTimeout),
            (std::vector<std::string>{fs::canonical(shared).string() + "\n"}));
}

TEST_F(LocalBackendTest, LimitsAreEnforcedOrTheTaskSaysWhyNot) {
  options_.cgroup_root = scratch_dir_;  // not a cgroup hierarchy
  Open();
  WorkloadSpec spec = Spec(NewId("limits"), {"true"});
  spec.roles[0].resources = {.cpu_millis = 500, .memory_bytes = 256 << 20};
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded);
  EXPECT_EQ(s->tasks[0].message,
            absl::StrCat("limits not enforced: ", scratch_dir_, " is not a cgroup v2 hierarchy"));

  // On this host's real hierarchy: either the task's cgroup carries the limit, or the status
  // says why there is none.
  backend_.reset();
  options_.cgroup_root = "/sys/fs/cgroup";
  Open();
  WorkloadSpec real = Spec(NewId("limits"), {"/bin/sh", "-c", "cat /proc/self/cgroup"});
  real.roles[0].resources = spec.roles[0].resources;
  ASSERT_TRUE(Submit(real).ok());
  s = WaitForFinal(real.id, kTimeout);
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << s.status();
  auto log = ReadWholeLog(real.id, kWorker0);
  ASSERT_TRUE(log.ok());
  if (Contains(s->tasks[0].message, "limits not enforced: ")) {
    GTEST_LOG_(INFO) << "no cgroup limits here: " << s->tasks[0].message;
  } else {
    EXPECT_TRUE(Contains(*log, absl::StrCat("/submarine/", real.id, ".worker-0"))) << *log;
  }
}

// System metrics: while it runs, a task's CPU time and resident memory are sampled; once it
// ended, the kernel's accounting gives the totals.
TEST_F(LocalBackendTest, UsageIsSampledWhileATaskRunsAndFinalOnceItEnded) {
  Open();
  WorkloadSpec spec = Spec(NewId("usage"), {"/usr/bin/python3", "-c",
                                            "import time\n"
                                            "b = b'x' * (64 << 20)\n"
                                            "while time.process_time() < 1.0: pass\n"
                                            "time.sleep(5)\n"});
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        const auto& u = w.tasks[0].usage;
        return IsFinal(w.phase) || (u && u->memory_bytes >= (60 << 20) && u->cpu_seconds >= 0.5);
      },
      kTimeout);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->phase, Phase::kRunning) << Describe(running);
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);
  ASSERT_TRUE(s->tasks[0].usage.has_value());
  EXPECT_GE(s->tasks[0].usage->cpu_seconds, 0.8);
  EXPECT_GE(s->tasks[0].usage->max_memory_bytes, 60 << 20);
  EXPECT_EQ(s->tasks[0].usage->memory_bytes, 0);
}

// GPU figures: a task given a GPU is asked about through nvidia-smi (here a script answering as
// it would: the shell's pid holds 300 MiB, GPU 0 is 75 % busy, GPU 1 5 %).
TEST_F(LocalBackendTest, GpuUsageOfATaskGivenGpusComesFromNvidiaSmi) {
  const std::string dir = scratch_dir_ + "/gpu";
  fs::create_directories(dir);
  options_.gpus = {"0", "1"};
  options_.nvidia_smi = dir + "/nvidia-smi";
  std::ofstream(options_.nvidia_smi)
      << "#!/bin/sh\n"
         "echo \"$1\" >> \""
      << dir << "/calls\"\n"
      << "case \"$1\" in\n"
         "  --query-compute-apps=pid,used_memory) cat \""
      << dir << "/apps.csv\" 2>/dev/null; echo '1, 4096' ;;\n"
      << "  --query-gpu=index,uuid,utilization.gpu) printf '0, GPU-a, 75\\n1, GPU-b, 5\\n' ;;\n"
         "  *) exit 2 ;;\n"
         "esac\n";
  fs::permissions(options_.nvidia_smi, fs::perms::owner_all);
  Open();
  WorkloadSpec spec =
      Spec(NewId("gpu"), {"/bin/sh", "-c",
                          absl::StrCat("echo \"$$, 300\" > ", dir, "/apps.csv; while [ ! -e ", dir,
                                       "/go ]; do sleep 0.05; done")});
  spec.roles[0].resources.gpus = 1;
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        const auto& u = w.tasks[0].usage;
        return IsFinal(w.phase) || (u && u->gpu_memory_bytes.value_or(0) > 0);
      },
      kTimeout);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->phase, Phase::kRunning) << Describe(running);
  EXPECT_EQ(running->tasks[0].usage->gpu_memory_bytes, int64_t{300} << 20);
  EXPECT_DOUBLE_EQ(running->tasks[0].usage->gpu_utilization, 75);
  std::ofstream(dir + "/go").put('\n');
  auto s = WaitForFinal(spec.id, kTimeout);
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);
  ASSERT_TRUE(s->tasks[0].usage.has_value());
  EXPECT_EQ(s->tasks[0].usage->gpu_memory_bytes, 0);
  EXPECT_EQ(s->tasks[0].usage->max_gpu_memory_bytes, int64_t{300} << 20);

  // A task without GPUs is not asked about (it lives past a 2 s sample).
  const std::string calls_before = local::ReadSmallFile(dir + "/calls").value_or("");
  EXPECT_FALSE(calls_before.empty());
  WorkloadSpec cpu_only = Spec(NewId("cpu"), {"/bin/sh", "-c", "sleep 2.5"});
  ASSERT_TRUE(Submit(cpu_only).ok());
  auto done = WaitForFinal(cpu_only.id, kTimeout);
  ASSERT_TRUE(done.ok() && done->phase == Phase::kSucceeded) << Describe(done);
  ASSERT_TRUE(done->tasks[0].usage.has_value());
  EXPECT_FALSE(done->tasks[0].usage->gpu_memory_bytes.has_value());
  EXPECT_EQ(local::ReadSmallFile(dir + "/calls").value_or(""), calls_before);
}

// Submit crashed after writing the workload and before launching anything: the next Get
// launches what is missing. (A supervisor that exits at once stands in for the crash.)
TEST_F(LocalBackendTest, GetLaunchesTasksASubmitLeftUnstarted) {
  options_.supervisor_path = "/bin/true";
  Open();
  const std::string id = NewId("unstarted");
  EXPECT_EQ(Submit(Spec(id, {"/bin/sh", "-c", "echo ran"})).code(), absl::StatusCode::kUnavailable);
  auto pending = backend_->Get(id);
  EXPECT_EQ(pending.status().code(), absl::StatusCode::kUnavailable);

  backend_.reset();
  options_.supervisor_path = SupervisorPath();
  Open();
  auto s = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded);
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "ran\n");
}

TEST_F(LocalBackendTest, StoppingBeforeTheTasksStartKillsThemUnstarted) {
  options_.supervisor_path = "/bin/true";
  Open();
  const std::string id = NewId("early-stop");
  EXPECT_FALSE(Submit(Spec(id, {"/bin/sh", "-c", "echo ran"})).ok());
  ASSERT_TRUE(backend_->Stop(id, std::chrono::seconds(5)).ok());
  backend_.reset();
  options_.supervisor_path = SupervisorPath();
  Open();
  auto s = WaitForFinal(id, kTimeout);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled);
  EXPECT_EQ(s->tasks[0].message, "stopped on request before it started");
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "");
}

}  // namespace
}  // namespace submarine::compute::testing
