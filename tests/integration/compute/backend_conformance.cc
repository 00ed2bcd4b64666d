#include "tests/integration/compute/backend_conformance.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/compute/workload.h"
#include "common/util/clock.h"
#include "common/util/wait.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace submarine::compute::testing {

std::string ConformanceTargetName(const ::testing::TestParamInfo<ConformanceTarget>& info) {
  return info.param.name;
}

void PrintTo(const ConformanceTarget& target, std::ostream* os) { *os << target.name; }

WorkloadSpec BackendTestBase::Spec(const std::string& id, std::vector<std::string> command,
                                   int replicas) const {
  WorkloadSpec spec;
  spec.id = id;
  RoleSpec role;
  role.name = "worker";
  role.replicas = replicas;
  role.command = std::move(command);
  role.image = image_;
  spec.roles.push_back(std::move(role));
  return spec;
}

std::string BackendTestBase::NewId(const std::string& stem) {
  return absl::StrCat(stem, "-", IdGenerator::Secure().RandomHex(4));
}

absl::Status BackendTestBase::Submit(const WorkloadSpec& spec) {
  if (std::find(submitted_.begin(), submitted_.end(), spec.id) == submitted_.end()) {
    submitted_.push_back(spec.id);
  }
  return backend_->Submit(spec);
}

absl::StatusOr<WorkloadStatus> BackendTestBase::WaitFor(
    const std::string& id, const std::function<bool(const WorkloadStatus&)>& done,
    std::chrono::milliseconds timeout) {
  absl::StatusOr<WorkloadStatus> last = absl::DeadlineExceededError("never polled");
  WaitUntil(
      [&] {
        last = backend_->Get(id);
        return !last.ok() || done(*last);
      },
      timeout);
  return last;
}

absl::StatusOr<WorkloadStatus> BackendTestBase::WaitForFinal(const std::string& id,
                                                             std::chrono::milliseconds timeout) {
  return WaitFor(
      id, [](const WorkloadStatus& s) { return IsFinal(s.phase); }, timeout);
}

std::vector<std::string> BackendTestBase::RunToSuccess(const WorkloadSpec& spec,
                                                       std::chrono::milliseconds timeout) {
  std::vector<std::string> logs;
  EXPECT_TRUE(Submit(spec).ok());
  auto s = WaitForFinal(spec.id, timeout);
  EXPECT_TRUE(s.ok() && s->phase == Phase::kSucceeded)
      << (s.ok() ? absl::StrCat(PhaseName(s->phase), " ", s->message) : s.status().ToString());
  if (!s.ok() || s->phase != Phase::kSucceeded) return logs;
  for (const TaskStatus& t : s->tasks) {
    auto log = ReadWholeLog(spec.id, t.task);
    logs.push_back(log.ok() ? *log : log.status().ToString());
  }
  return logs;
}

absl::StatusOr<std::string> BackendTestBase::ReadWholeLog(const std::string& id,
                                                          const TaskRef& task) {
  std::string out;
  int64_t offset = 0;
  while (true) {
    auto chunk = backend_->ReadLog(id, task, offset, 7);
    if (!chunk.ok()) return chunk.status();
    out += chunk->data;
    if (chunk->data.empty()) return out;
    offset = chunk->next_offset;
  }
}

void BackendTestBase::TearDownBackend() {
  if (!backend_) return;
  for (const std::string& id : submitted_) {
    EXPECT_TRUE(backend_->Delete(id, /*keep_logs=*/false).ok()) << id;
  }
  submitted_.clear();
}

void BackendConformanceTest::SetUp() {
  scratch_dir_ = submarine::testing::MakeTempDir("compute-conformance");
  image_ = GetParam().image;
  auto backend = GetParam().make(scratch_dir_);
  ASSERT_TRUE(backend.ok()) << backend.status();
  backend_ = *std::move(backend);
}

void BackendConformanceTest::TearDown() {
  TearDownBackend();
  backend_.reset();
  if (!HasFailure()) std::filesystem::remove_all(scratch_dir_);
}

std::string Describe(const absl::StatusOr<WorkloadStatus>& s) {
  if (!s.ok()) return s.status().ToString();
  std::string out = absl::StrCat(s->id, " ", PhaseName(s->phase), " \"", s->message, "\"");
  for (const TaskStatus& t : s->tasks) {
    absl::StrAppend(&out, "; ", t.task.role, "-", t.task.index, " ", PhaseName(t.phase),
                    " attempt ", t.attempt, " \"", t.message, "\"");
  }
  return out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

WorkloadSpec GoldenPytorchSpec() {
  WorkloadSpec spec;
  spec.id = "exp-0123456789abcdef0123-1";
  spec.framework = Framework::kPytorch;
  spec.env = {{"EPOCHS", "3"}};
  spec.labels = {{"submarine.experiment", "projects/p/experiments/e"}};
  RoleSpec master{"master", 1, {"python3", "train.py", "--lr", "0.01"}, {}, {}, "", 0};
  master.resources = {500, 2LL << 30, 1};
  RoleSpec worker{"worker",
                  2,
                  {"/bin/sh", "-c", "python3 train.py"},
                  {{"ROLE_ONLY", "x"}},
                  {1000, 0, 0},
                  "registry.example/worker:2",
                  3};
  spec.roles = {master, worker};
  return spec;
}

void ExpectGolden(const std::string& got, const std::string& file) {
  const std::string path =
      absl::StrCat(SUBMARINE_SOURCE_DIR, "/tests/integration/compute/golden/", file);
  if (std::getenv("SUBMARINE_UPDATE_GOLDEN") != nullptr) std::ofstream(path) << got;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(got, text.str()) << "regenerate " << file
                             << " with SUBMARINE_UPDATE_GOLDEN=1 and review the diff";
}

namespace {

TEST_P(BackendConformanceTest, TrueSucceeds) {
  const std::string id = NewId("true");
  ASSERT_TRUE(Submit(Spec(id, {"true"})).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kSucceeded) << Describe(s);
  ASSERT_EQ(s->tasks.size(), 1u);
  const TaskStatus& t = s->tasks[0];
  EXPECT_EQ(t.task, kWorker0);
  EXPECT_EQ(t.phase, Phase::kSucceeded);
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_FALSE(t.host.empty());
  ASSERT_TRUE(t.start_time && t.finish_time);
  EXPECT_LE(*t.start_time, *t.finish_time);
}

TEST_P(BackendConformanceTest, ExitCodeFailsTheWorkloadWithAMessage) {
  const std::string id = NewId("exit3");
  ASSERT_TRUE(Submit(Spec(id, {"/bin/sh", "-c", "exit 3"})).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kFailed) << Describe(s);
  ASSERT_EQ(s->tasks.size(), 1u);
  EXPECT_EQ(s->tasks[0].phase, Phase::kFailed);
  EXPECT_EQ(s->tasks[0].exit_code, 3);
  EXPECT_TRUE(Contains(s->tasks[0].message, "exit code 3")) << Describe(s);
  EXPECT_TRUE(Contains(s->message, "worker-0")) << s->message;
  EXPECT_TRUE(Contains(s->message, "exit code 3")) << s->message;
}

TEST_P(BackendConformanceTest, ShellStringIsNotSplitOnSpaces) {
  WorkloadSpec spec =
      Spec(NewId("shell"), {"/bin/sh", "-c", "printf '%s|' \"a b\" 'c  d' \"$((1 + 2))\""});
  EXPECT_EQ(RunToSuccess(spec, timeout()), std::vector<std::string>{"a b|c  d|3|"});
}

TEST_P(BackendConformanceTest, ArgvKeepsSpacesAndQuotes) {
  WorkloadSpec spec = Spec(NewId("argv"), {"printf", "%s|", "a b", "c  d", "'q'", "\"$HOME\""});
  EXPECT_EQ(RunToSuccess(spec, timeout()), std::vector<std::string>{"a b|c  d|'q'|\"$HOME\"|"});
}

TEST_P(BackendConformanceTest, RoleEnvWinsOverWorkloadEnvAndPlatformVariablesWinOverBoth) {
  const std::string id = NewId("env");
  WorkloadSpec spec = Spec(id,
                           {"/bin/sh", "-c",
                            "printf '%s\\n' \"A=$A\" \"B=$B\" \"ID=$SUBMARINE_WORKLOAD_ID\" "
                            "\"ROLE=$SUBMARINE_TASK_ROLE\" \"INDEX=$SUBMARINE_TASK_INDEX\" "
                            "\"ATTEMPT=$SUBMARINE_TASK_ATTEMPT\""},
                           2);
  spec.env = {{"A", "from workload"}, {"B", "from workload"}, {"SUBMARINE_TASK_INDEX", "7"}};
  spec.roles[0].env = {{"B", "from role"},
                       {"SUBMARINE_WORKLOAD_ID", "forged"},
                       {"SUBMARINE_TASK_ROLE", "forged"},
                       {"SUBMARINE_TASK_ATTEMPT", "99"}};
  std::vector<std::string> logs = RunToSuccess(spec, timeout());
  ASSERT_EQ(logs.size(), 2u);
  for (int index : {0, 1}) {
    EXPECT_EQ(logs[index], absl::StrCat("A=from workload\nB=from role\nID=", id,
                                        "\nROLE=worker\nINDEX=", index, "\nATTEMPT=1\n"));
  }
}

// Credentials reach every task's environment (plain env wins over them), and a restarted
// backend (SpecFromJson of what it stored) knows their keys but never their values.
TEST_P(BackendConformanceTest, SecretEnvReachesEveryTaskAndIsNotStoredWithTheSpec) {
  WorkloadSpec spec =
      Spec(NewId("secret"), {"/bin/sh", "-c", "printf '%s|%s' \"$API_TOKEN\" \"$SHADOWED\""}, 2);
  spec.secret_env = {{"API_TOKEN", "s3cr3t-token-value"}, {"SHADOWED", "secret"}};
  spec.env = {{"SHADOWED", "plain"}};
  EXPECT_EQ(RunToSuccess(spec, timeout()),
            (std::vector<std::string>{"s3cr3t-token-value|plain", "s3cr3t-token-value|plain"}));
  const nlohmann::json stored = SpecToJson(spec);
  EXPECT_EQ(stored.dump().find("s3cr3t-token-value"), std::string::npos) << stored.dump();
  auto back = SpecFromJson(stored);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->secret_env,
            (std::map<std::string, std::string>{{"API_TOKEN", ""}, {"SHADOWED", ""}}));
}

// Secrets renewed while a task runs (a workload identity token) reach it as the files
// $SUBMARINE_SECRETS_DIR/<key>, on backends that can; the variable keeps its first value.
TEST_P(BackendConformanceTest, UpdatedSecretsReachRunningTasksThroughTheSecretsDir) {
  const std::string id = NewId("secrets");
  WorkloadSpec spec = Spec(id, {"/bin/sh", "-c",
                                "f=\"$SUBMARINE_SECRETS_DIR/TOKEN\"; echo \"start $(cat \"$f\") "
                                "$TOKEN\"; while [ \"$(cat \"$f\")\" = one ]; do sleep 0.05; done; "
                                "echo \"now $(cat \"$f\") $TOKEN\""});
  spec.secret_env = {{"TOKEN", "one"}};
  if (!backend_->UpdatesSecretsOf(spec)) {
    GTEST_SKIP() << "the " << backend_->Kind() << " backend cannot update this workload's secrets";
  }
  ASSERT_TRUE(Submit(spec).ok());
  std::string log;
  auto started = WaitFor(
      id,
      [&](const WorkloadStatus&) {
        log = ReadWholeLog(id, kWorker0).value_or("");
        return !log.empty();
      },
      timeout());
  ASSERT_EQ(log, "start one one\n") << Describe(started);

  EXPECT_EQ(backend_->UpdateSecrets(id, {{"OTHER", "x"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->UpdateSecrets(NewId("never"), {{"TOKEN", "x"}}).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(backend_->UpdateSecrets(id, {{"TOKEN", "two"}}).ok());
  auto done = WaitForFinal(id, timeout());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->phase, Phase::kSucceeded) << Describe(done);
  EXPECT_EQ(ReadWholeLog(id, kWorker0).value_or(""), "start one one\nnow two one\n");
}

TEST_P(BackendConformanceTest, LogsAreReadByOffsetAfterTheEndAndAfterDeleteKeepingThem) {
  const std::string id = NewId("logs");
  ASSERT_TRUE(
      Submit(Spec(id, {"/bin/sh", "-c", "printf 'line one\\n'; printf 'line two\\n' >&2"})).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);

  auto head = backend_->ReadLog(id, kWorker0, 0, 5);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->data, "line ");
  EXPECT_EQ(head->next_offset, 5);
  EXPECT_EQ(head->size, 18);
  EXPECT_TRUE(head->complete);
  auto rest = backend_->ReadLog(id, kWorker0, head->next_offset, 1000);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->data, "one\nline two\n");  // stdout and stderr in one log
  EXPECT_EQ(rest->next_offset, 18);
  auto past = backend_->ReadLog(id, kWorker0, 1000, 10);
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_EQ(past->data, "");
  EXPECT_EQ(past->size, 18);

  ASSERT_TRUE(backend_->Delete(id, /*keep_logs=*/true).ok());
  EXPECT_TRUE(absl::IsNotFound(backend_->Get(id).status()));
  auto kept = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "line one\nline two\n");
  auto chunk = backend_->ReadLog(id, kWorker0, 0, 100);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_TRUE(chunk->complete);

  EXPECT_TRUE(absl::IsNotFound(backend_->ReadLog(id, {"worker", 5}, 0, 10).status()));
  EXPECT_TRUE(absl::IsNotFound(backend_->ReadLog(id, {"ps", 0}, 0, 10).status()));
  ASSERT_TRUE(backend_->Delete(id, /*keep_logs=*/false).ok());
  EXPECT_TRUE(absl::IsNotFound(backend_->ReadLog(id, kWorker0, 0, 10).status()));
}

TEST_P(BackendConformanceTest, StopEndsASleepingTaskWithinTheGrace) {
  const std::string id = NewId("stop");
  ASSERT_TRUE(Submit(Spec(id, {"sleep", "600"})).ok());
  auto running = WaitFor(
      id, [](const WorkloadStatus& s) { return s.phase != Phase::kPending; }, timeout());
  ASSERT_TRUE(running.ok() && running->phase == Phase::kRunning) << Describe(running);
  // sleep dies of SIGTERM: it is gone long before a grace this long would force it.
  const auto grace = std::chrono::minutes(5);
  ASSERT_TRUE(backend_->Stop(id, grace).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled);
  // Stopping a finished workload is OK and changes nothing.
  EXPECT_TRUE(backend_->Stop(id, grace).ok());
  auto again = backend_->Get(id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->phase, Phase::kKilled);
}

// A stopped task may checkpoint on SIGTERM: what it writes on its way out is in its log once the
// workload is final (not only what it wrote before the stop).
TEST_P(BackendConformanceTest, WhatAStoppedTaskWritesOnItsWayOutIsKept) {
  const std::string id = NewId("goodbye");
  ASSERT_TRUE(Submit(Spec(id, {"/bin/sh", "-c",
                               "trap 'echo checkpointed; exit 143' TERM; echo ready; "
                               "while :; do sleep 1 & wait $! 2>/dev/null; done"}))
                  .ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto log = backend_->ReadLog(id, kWorker0, 0, 100);
        return log.ok() && log->data == "ready\n";
      },
      timeout()));
  ASSERT_TRUE(backend_->Stop(id, std::chrono::minutes(5)).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "ready\ncheckpointed\n");
}

TEST_P(BackendConformanceTest, StopForcesATaskThatIgnoresSigtermAfterTheGrace) {
  const std::string id = NewId("stubborn");
  // TERM is ignored by the shell and, inherited, by every sleep it starts.
  ASSERT_TRUE(
      Submit(Spec(id, {"/bin/sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"}))
          .ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto log = backend_->ReadLog(id, kWorker0, 0, 100);
        return log.ok() && log->data == "trapped\n";
      },
      timeout()));
  const auto grace = std::chrono::seconds(1);
  const auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(backend_->Stop(id, grace).ok());
  auto s = WaitForFinal(id, grace + timeout());
  const auto took = std::chrono::steady_clock::now() - stopped_at;
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  EXPECT_EQ(s->tasks[0].phase, Phase::kKilled);
  EXPECT_GE(took, grace) << "killed before its grace period";
}

TEST_P(BackendConformanceTest, SubmittingTheSameIdTwiceRunsTheFirstSpecOnce) {
  const std::string id = NewId("twice");
  ASSERT_TRUE(Submit(Spec(id, {"/bin/sh", "-c", "echo first"})).ok());
  ASSERT_TRUE(Submit(Spec(id, {"/bin/sh", "-c", "echo second"}, 2)).ok());
  auto s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok() && s->phase == Phase::kSucceeded) << Describe(s);
  ASSERT_TRUE(Submit(Spec(id, {"/bin/sh", "-c", "echo third"})).ok());
  auto after = backend_->Get(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->tasks.size(), 1u);
  auto log = ReadWholeLog(id, kWorker0);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "first\n");
}

TEST_P(BackendConformanceTest, UnknownWorkloadsAreNotFound) {
  const std::string id = NewId("never");
  EXPECT_EQ(backend_->Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Stop(id, std::chrono::seconds(1)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->ReadLog(id, kWorker0, 0, 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Get("Not/An/Id").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(BackendConformanceTest, DeleteKillsAndIsIdempotent) {
  const std::string id = NewId("delete");
  WorkloadSpec spec = Spec(id, {"sleep", "600"});
  spec.labels = {{"submarine.experiment", "projects/p/experiments/e"}};
  ASSERT_TRUE(Submit(spec).ok());
  auto running = WaitFor(
      id, [](const WorkloadStatus& s) { return s.phase == Phase::kRunning; }, timeout());
  ASSERT_TRUE(running.ok() && running->phase == Phase::kRunning) << Describe(running);
  auto listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  auto it = std::find_if(listed->begin(), listed->end(),
                         [&](const WorkloadStatus& s) { return s.id == id; });
  ASSERT_NE(it, listed->end());
  EXPECT_EQ(it->labels, spec.labels);

  ASSERT_TRUE(backend_->Delete(id, /*keep_logs=*/false).ok());
  EXPECT_TRUE(backend_->Delete(id, /*keep_logs=*/false).ok());
  EXPECT_TRUE(backend_->Delete(NewId("never"), /*keep_logs=*/true).ok());
  EXPECT_TRUE(absl::IsNotFound(backend_->Get(id).status()));
  listed = backend_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(std::none_of(listed->begin(), listed->end(),
                           [&](const WorkloadStatus& s) { return s.id == id; }));
}

TEST_P(BackendConformanceTest, SpecsItCannotRunAreInvalidArguments) {
  WorkloadSpec no_roles;
  no_roles.id = NewId("invalid");
  EXPECT_EQ(backend_->Submit(no_roles).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Submit(Spec(NewId("invalid"), {})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Submit(Spec("Upper_Case", {"true"})).code(),
            absl::StatusCode::kInvalidArgument);
  WorkloadSpec zero = Spec(NewId("invalid"), {"true"}, 0);
  EXPECT_EQ(backend_->Submit(zero).code(), absl::StatusCode::kInvalidArgument);
}

// ---- Service workloads ----

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ServiceConformance);

// `spec` (from Spec()) made a service of python3 HTTP servers over `dir`, ready once GET /ready
// answers (once the test created dir/ready).
WorkloadSpec HttpService(WorkloadSpec spec, const std::string& dir) {
  spec.kind = WorkloadKind::kService;
  spec.working_dir = dir;
  spec.roles[0].command = {"/bin/sh", "-c",
                           "echo serving attempt $SUBMARINE_TASK_ATTEMPT; exec python3 -m "
                           "http.server \"$SUBMARINE_PORT\" --bind \"${SUBMARINE_HOST:-0.0.0.0}\""};
  spec.roles[0].readiness = ReadinessProbe{"/ready", std::chrono::milliseconds(50)};
  return spec;
}

bool AllReady(const WorkloadStatus& s, size_t replicas) {
  return s.phase == Phase::kRunning && s.tasks.size() == replicas &&
         std::all_of(s.tasks.begin(), s.tasks.end(),
                     [](const TaskStatus& t) { return t.phase == Phase::kRunning && t.ready; });
}

// What GET `target` on a replica's endpoint answers.
absl::StatusOr<int> GetStatusCode(const std::string& endpoint, const std::string& target) {
  auto connection = submarine::testing::HttpConnection::Connect(endpoint);
  if (!connection.ok()) return connection.status();
  auto answer = connection->Request("GET", target);
  if (!answer.ok()) return answer.status();
  return answer->status;
}

TEST_P(ServiceConformance, ReplicasServeTheirOwnEndpointAndAreReadyOnlyOnceTheProbePasses) {
  const std::string dir = scratch_dir_ + "/site";
  std::filesystem::create_directories(dir);
  const std::string id = NewId("svc");
  ASSERT_TRUE(Submit(HttpService(Spec(id, {}, 2), dir)).ok());
  // Serving, but GET /ready is a 404: running, never ready.
  auto s = WaitFor(
      id,
      [](const WorkloadStatus& w) {
        return w.tasks.size() == 2 && std::all_of(w.tasks.begin(), w.tasks.end(), [](auto& t) {
                 return Contains(t.message, "HTTP 404");
               });
      },
      timeout());
  ASSERT_TRUE(s.ok() && s->tasks.size() == 2) << Describe(s);
  EXPECT_EQ(s->phase, Phase::kRunning) << Describe(s);
  for (const TaskStatus& t : s->tasks) {
    EXPECT_EQ(t.phase, Phase::kRunning) << Describe(s);
    EXPECT_FALSE(t.ready) << Describe(s);
    EXPECT_TRUE(Contains(t.message, "not ready: GET /ready: HTTP 404")) << Describe(s);
  }
  std::ofstream(dir + "/ready") << "ok\n";
  s = WaitFor(
      id, [](const WorkloadStatus& w) { return AllReady(w, 2); }, timeout());
  ASSERT_TRUE(s.ok() && AllReady(*s, 2)) << Describe(s);
  EXPECT_NE(s->tasks[0].endpoint, s->tasks[1].endpoint);
  for (const TaskStatus& t : s->tasks) {
    EXPECT_EQ(GetStatusCode(t.endpoint, "/ready").value_or(0), 200) << t.endpoint;
    EXPECT_EQ(t.attempt, 1);
  }
}

TEST_P(ServiceConformance, AReplicaThatExitsIsStartedAgainWhateverItsExitCode) {
  // Attempts 1 and 2 end (0, then 1); the third keeps running.
  WorkloadSpec spec =
      Spec(NewId("svc-restart"), {"/bin/sh", "-c",
                                  "echo attempt $SUBMARINE_TASK_ATTEMPT; "
                                  "[ \"$SUBMARINE_TASK_ATTEMPT\" = 1 ] && exit 0; "
                                  "[ \"$SUBMARINE_TASK_ATTEMPT\" = 2 ] && exit 1; exec sleep 600"});
  spec.kind = WorkloadKind::kService;
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      spec.id,
      [](const WorkloadStatus& w) {
        return w.tasks.size() == 1 && w.tasks[0].attempt == 3 && w.tasks[0].ready;
      },
      timeout());
  ASSERT_TRUE(s.ok() && s->tasks.size() == 1 && s->tasks[0].attempt == 3) << Describe(s);
  EXPECT_EQ(s->phase, Phase::kRunning) << Describe(s);
  EXPECT_EQ(s->tasks[0].phase, Phase::kRunning);
  // Attempt 3 runs: what it prints may still be on its way.
  std::string log;
  WaitUntil(
      [&] {
        log = ReadWholeLog(spec.id, kWorker0).value_or("");
        return log.size() >= std::string("attempt 1\nattempt 2\nattempt 3\n").size();
      },
      timeout());
  EXPECT_EQ(log, "attempt 1\nattempt 2\nattempt 3\n");

  ASSERT_TRUE(backend_->Stop(spec.id, std::chrono::seconds(5)).ok());
  s = WaitForFinal(spec.id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  EXPECT_EQ(backend_->Scale(spec.id, "worker", 2, std::chrono::seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(ServiceConformance, ScalingAddsReplicasAndStopsTheHighestIndexesGracefully) {
  const std::string dir = scratch_dir_ + "/site";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/ready") << "ok\n";
  const std::string id = NewId("svc-scale");
  WorkloadSpec spec = HttpService(Spec(id, {}, 1), dir);
  spec.secret_env = {{"TOKEN", "s3cret"}};
  // Says goodbye on SIGTERM, so that a graceful stop shows in its log.
  spec.roles[0].command = {
      "/bin/sh", "-c",
      "echo token=$TOKEN; python3 -m http.server \"$SUBMARINE_PORT\" --bind "
      "\"${SUBMARINE_HOST:-0.0.0.0}\" & trap 'echo bye; kill $!; exit 0' TERM; "
      "wait"};
  ASSERT_TRUE(Submit(spec).ok());
  auto s = WaitFor(
      id, [](const WorkloadStatus& w) { return AllReady(w, 1); }, timeout());
  ASSERT_TRUE(s.ok() && AllReady(*s, 1)) << Describe(s);

  ASSERT_TRUE(backend_->Scale(id, "worker", 3, std::chrono::seconds(5)).ok());
  s = WaitFor(
      id, [](const WorkloadStatus& w) { return AllReady(w, 3); }, timeout());
  ASSERT_TRUE(s.ok() && AllReady(*s, 3)) << Describe(s);
  std::set<std::string> endpoints;
  for (const TaskStatus& t : s->tasks) endpoints.insert(t.endpoint);
  EXPECT_EQ(endpoints.size(), 3u);
  const std::string third = s->tasks[2].endpoint;
  EXPECT_EQ(GetStatusCode(third, "/ready").value_or(0), 200);

  ASSERT_TRUE(backend_->Scale(id, "worker", 1, std::chrono::seconds(5)).ok());
  s = backend_->Get(id);
  ASSERT_TRUE(s.ok() && s->tasks.size() == 1) << Describe(s);
  EXPECT_EQ(s->phase, Phase::kRunning);
  // The removed replicas stopped through SIGTERM (their logs say so) and stopped serving.
  for (int index : {1, 2}) {
    const TaskRef task{"worker", index};
    std::string log;
    WaitUntil(
        [&] {
          log = ReadWholeLog(id, task).value_or("");
          return Contains(log, "bye");
        },
        timeout());
    EXPECT_TRUE(Contains(log, "token=s3cret")) << log;  // added replicas get the secrets too
    EXPECT_TRUE(Contains(log, "bye")) << log;
  }
  EXPECT_TRUE(WaitUntil([&] { return !GetStatusCode(third, "/ready").ok(); }, timeout()));

  // Down to zero and back: the workload lives on with no replica, then serves again.
  ASSERT_TRUE(backend_->Scale(id, "worker", 0, std::chrono::seconds(5)).ok());
  s = backend_->Get(id);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kRunning) << Describe(s);
  EXPECT_TRUE(s->tasks.empty()) << Describe(s);
  ASSERT_TRUE(backend_->Scale(id, "worker", 2, std::chrono::seconds(5)).ok());
  s = WaitFor(
      id, [](const WorkloadStatus& w) { return AllReady(w, 2); }, timeout());
  ASSERT_TRUE(s.ok() && AllReady(*s, 2)) << Describe(s);

  // Bad requests change nothing.
  EXPECT_EQ(backend_->Scale(id, "worker", -1, std::chrono::seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Scale(id, "nope", 1, std::chrono::seconds(1)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Scale(NewId("never"), "worker", 1, std::chrono::seconds(1)).code(),
            absl::StatusCode::kNotFound);
  s = backend_->Get(id);
  ASSERT_TRUE(s.ok() && s->tasks.size() == 2) << Describe(s);

  ASSERT_TRUE(backend_->Stop(id, std::chrono::seconds(5)).ok());
  s = WaitForFinal(id, timeout());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, Phase::kKilled) << Describe(s);
  for (const TaskStatus& t : s->tasks) EXPECT_EQ(t.phase, Phase::kKilled) << Describe(s);
}

TEST_P(ServiceConformance, BatchWorkloadsDoNotScaleAndServiceSpecsAreChecked) {
  const std::string id = NewId("batch");
  ASSERT_TRUE(Submit(Spec(id, {"sleep", "600"})).ok());
  EXPECT_EQ(backend_->Scale(id, "worker", 2, std::chrono::seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
  WorkloadSpec bad = Spec(NewId("svc-bad"), {"true"});
  bad.kind = WorkloadKind::kService;
  bad.framework = Framework::kPytorch;
  auto refused = backend_->Submit(bad);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(refused.message()), "spec.framework")) << refused;
  bad.framework = Framework::kPlain;
  bad.roles[0].readiness = ReadinessProbe{"no-slash", std::chrono::milliseconds(100)};
  refused = backend_->Submit(bad);
  EXPECT_TRUE(Contains(std::string(refused.message()), "readiness.http_path")) << refused;
  WorkloadSpec probed_batch = Spec(NewId("batch-bad"), {"true"});
  probed_batch.roles[0].readiness = ReadinessProbe{"/", std::chrono::milliseconds(100)};
  refused = backend_->Submit(probed_batch);
  EXPECT_TRUE(Contains(std::string(refused.message()), "readiness")) << refused;
  EXPECT_TRUE(absl::IsNotFound(backend_->Get(bad.id).status()));
}

}  // namespace
}  // namespace submarine::compute::testing
