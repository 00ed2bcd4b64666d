// The experiment service end to end on one host: a real service process on real PostgreSQL runs
// real processes through the local compute backend. Covers the lifecycle and its history, task
// details and exit codes, logs, validation (nothing stored), stop, delete, request ids and
// recovery after kill -9 of the service.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/statement.h"
#include "common/status/status.h"
#include "tests/integration/experiment/experiment_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;
namespace fs = std::filesystem;

class ExperimentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartExperimentService();
    ASSERT_TRUE(p.ok()) << p.status();
    svc_ = std::move(*p);
  }

  // A plain experiment running `cmd` in one role.
  static v1::Experiment Shell(const std::string& cmd, int replicas = 1) {
    v1::Experiment e;
    e.mutable_spec()->mutable_meta()->set_name("test");
    e.mutable_spec()->mutable_meta()->set_cmd(cmd);
    (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(replicas);
    return e;
  }

  grpc::Status Create(const v1::Experiment& e, v1::Experiment* out, const std::string& id = "",
                      const std::string& request_id = "",
                      const std::string& parent = "projects/p") {
    v1::CreateExperimentRequest req;
    req.set_parent(parent);
    req.set_experiment_id(id);
    *req.mutable_experiment() = e;
    req.set_request_id(request_id);
    return svc_->stub->CreateExperiment(ExperimentCtx().get(), req, out);
  }

  v1::Experiment Get(const std::string& name) {
    v1::GetExperimentRequest req;
    req.set_name(name);
    v1::Experiment out;
    grpc::Status st = svc_->stub->GetExperiment(ExperimentCtx().get(), req, &out);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return out;
  }

  // Waits until the experiment is in a final state (or `state`), returns it.
  v1::Experiment WaitUntil(const std::string& name, v1::State state = v1::STATE_UNSPECIFIED) {
    v1::Experiment e;
    bool ok = WaitFor(
        [&] {
          e = Get(name);
          return state == v1::STATE_UNSPECIFIED ? e.state() >= v1::SUCCEEDED : e.state() == state;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(ok) << name << " stayed " << v1::State_Name(e.state()) << ": " << e.state_reason();
    return e;
  }

  std::string Logs(const std::string& name, const std::string& task = "") {
    std::string all;
    int64_t offset = 0;
    for (;;) {
      v1::GetExperimentLogsRequest req;
      req.set_name(name);
      req.set_task(task);
      req.set_offset(offset);
      req.set_max_bytes(7);  // small pages: offsets must add up
      v1::ExperimentLogs out;
      grpc::Status st = svc_->stub->GetExperimentLogs(ExperimentCtx().get(), req, &out);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok() || out.data().empty()) break;
      all += out.data();
      offset = out.next_offset();
    }
    return all;
  }

  size_t Count() {
    v1::ListExperimentsRequest req;
    req.set_parent("projects/p");
    req.set_page_size(1000);
    v1::ListExperimentsResponse out;
    EXPECT_TRUE(svc_->stub->ListExperiments(ExperimentCtx().get(), req, &out).ok());
    return static_cast<size_t>(out.experiments_size());
  }

  static std::vector<v1::State> History(const v1::Experiment& e) {
    std::vector<v1::State> states;
    for (const auto& h : e.history()) states.push_back(h.state());
    return states;
  }

  // On a cluster of one task (plus `config_yaml`) held by a running experiment: `first`, then
  // `second` are created (`between`, if any, runs in between) and queue; then the holder ends.
  // Both run to SUCCEEDED and are returned in creation order.
  std::pair<v1::Experiment, v1::Experiment> RunTwoBehindAHolder(
      const std::string& config_yaml, const v1::Experiment& first, const v1::Experiment& second,
      const std::function<void(const v1::Experiment&)>& between) {
    svc_->process.Kill();
    auto capped = StartExperimentService(nullptr, "  max_running_tasks: 1\n" + config_yaml);
    EXPECT_TRUE(capped.ok()) << capped.status();
    if (!capped.ok()) return {};
    svc_ = std::move(*capped);
    const std::string gate = svc_->dir + "/open";
    v1::Experiment holder, a, b;
    EXPECT_TRUE(
        Create(Shell(absl::StrCat("while [ ! -e ", gate, " ]; do sleep 0.05; done")), &holder)
            .ok());
    WaitUntil(holder.name(), v1::RUNNING);
    EXPECT_TRUE(Create(first, &a, "first").ok());
    if (between) between(a);
    EXPECT_TRUE(Create(second, &b, "second").ok());
    EXPECT_TRUE(WaitFor([&] {
      return Get(a.name()).state() == v1::ACCEPTED && Get(b.name()).state() == v1::ACCEPTED;
    }));
    std::ofstream(gate) << "go";
    std::pair<v1::Experiment, v1::Experiment> done{WaitUntil(a.name()), WaitUntil(b.name())};
    EXPECT_EQ(done.first.state(), v1::SUCCEEDED);
    EXPECT_EQ(done.second.state(), v1::SUCCEEDED);
    return done;
  }

  // When its launch (the CREATED transition) was recorded, in microseconds.
  static int64_t LaunchedAt(const v1::Experiment& x) {
    for (const auto& h : x.history()) {
      if (h.state() == v1::CREATED) return db::Timestamp::FromProto(h.time()).micros;
    }
    return 0;
  }

  std::unique_ptr<ExperimentProcess> svc_;
};

TEST_F(ExperimentTest, AShellCommandRunsToSuccessThroughEveryStateInOrder) {
  v1::Experiment created;
  // A shell string is never split on spaces: the quoted spaces survive.
  ASSERT_TRUE(Create(Shell("echo \"hello   world\"; echo to-stderr >&2"), &created).ok());
  EXPECT_TRUE(absl::StartsWith(created.name(), "projects/p/experiments/experiment-"));
  EXPECT_EQ(created.state(), v1::PENDING);
  EXPECT_EQ(created.owner(), "anonymous");
  v1::Experiment done = WaitUntil(created.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.state_reason();
  EXPECT_EQ(History(done), (std::vector<v1::State>{v1::PENDING, v1::ACCEPTED, v1::CREATED,
                                                   v1::RUNNING, v1::SUCCEEDED}));
  for (int i = 1; i < done.history_size(); ++i) {
    EXPECT_LE(done.history(i - 1).time().seconds(), done.history(i).time().seconds());
  }
  EXPECT_TRUE(done.has_start_time());
  EXPECT_TRUE(done.has_end_time());
  ASSERT_EQ(done.tasks_size(), 1);
  EXPECT_EQ(done.tasks(0).role(), "worker");
  EXPECT_EQ(done.tasks(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.tasks(0).exit_code(), 0);
  // System metrics, final: the shell's resident size at least (its CPU time may round to 0).
  EXPECT_GT(done.tasks(0).max_memory_bytes(), 0);
  EXPECT_EQ(done.tasks(0).memory_bytes(), 0);
  std::string log = Logs(done.name());
  EXPECT_NE(log.find("hello   world\n"), std::string::npos) << log;
  EXPECT_NE(log.find("to-stderr\n"), std::string::npos) << log;
  // The reproducibility record: the command as run, the role lower-cased.
  const auto& resolved = done.reproducibility().resolved_spec();
  ASSERT_EQ(resolved.spec().count("worker"), 1u);
  EXPECT_EQ(resolved.spec().at("worker").args(0), "/bin/sh");
  EXPECT_EQ(done.reproducibility().backend(), "local");
}

TEST_F(ExperimentTest, AFailingTaskFailsTheExperimentWithItsExitCode) {
  v1::Experiment created;
  ASSERT_TRUE(Create(Shell("echo before-failing; exit 3"), &created).ok());
  v1::Experiment done = WaitUntil(created.name());
  ASSERT_EQ(done.state(), v1::FAILED);
  ASSERT_EQ(done.tasks_size(), 1);
  EXPECT_EQ(done.tasks(0).state(), v1::FAILED);
  EXPECT_EQ(done.tasks(0).exit_code(), 3);
  EXPECT_NE(done.state_reason().find("3"), std::string::npos) << done.state_reason();
  EXPECT_NE(Logs(done.name(), "worker-0").find("before-failing"), std::string::npos);
}

TEST_F(ExperimentTest, RoleVariablesAreMergedOverTheExperimentsAndThePlatformsAreSet) {
  v1::Experiment e = Shell("echo \"A=$A B=$B EXP=$SUBMARINE_EXPERIMENT\"");
  (*e.mutable_spec()->mutable_meta()->mutable_env_vars())["A"] = "meta";
  (*e.mutable_spec()->mutable_meta()->mutable_env_vars())["B"] = "meta";
  (*(*e.mutable_spec()->mutable_spec())["Worker"].mutable_env_vars())["B"] = "role";
  v1::Experiment created;
  ASSERT_TRUE(Create(e, &created, "env-merge").ok());
  ASSERT_EQ(WaitUntil(created.name()).state(), v1::SUCCEEDED);
  EXPECT_NE(Logs(created.name()).find("A=meta B=role EXP=projects/p/experiments/env-merge"),
            std::string::npos)
      << Logs(created.name());
}

TEST_F(ExperimentTest, BadSpecsAreRefusedNamingTheFieldAndNothingIsStored) {
  struct Case {
    std::function<void(v1::Experiment*)> spoil;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::Experiment* e) { e->mutable_spec()->mutable_meta()->set_framework("caffe"); },
       "experiment.spec.meta.framework"},
      {[](v1::Experiment* e) {
         e->mutable_spec()->mutable_meta()->set_framework("pytorch");
         (*e->mutable_spec()->mutable_spec())["Ps"].set_replicas(1);
       },
       "experiment.spec.spec"},
      {[](v1::Experiment* e) {
         (*e->mutable_spec()->mutable_spec())["Worker"].set_resources("cpu=abc");
       },
       "experiment.spec.spec.Worker.resources"},
      {[](v1::Experiment* e) { (*e->mutable_spec()->mutable_spec())["Worker"].set_replicas(-1); },
       "experiment.spec.spec.Worker.replicas"},
      {[](v1::Experiment* e) { e->mutable_spec()->mutable_meta()->clear_cmd(); },
       "experiment.spec.spec.Worker.cmd"},
      {[](v1::Experiment* e) { e->mutable_spec()->set_compute_cluster("gpu-farm"); },
       "experiment.spec.compute_cluster"},
      {[](v1::Experiment* e) {
         (*e->mutable_spec()->mutable_meta()->mutable_env_vars())["SUBMARINE_EXPERIMENT"] = "x";
       },
       "experiment.spec.meta.env_vars"},
      {[](v1::Experiment* e) { e->mutable_spec()->mutable_spec()->clear(); },
       "experiment.spec.spec"},
      {[](v1::Experiment* e) {
         e->mutable_spec()->mutable_environment()->add_pip_dependencies("pandas");
         e->mutable_spec()->mutable_environment()->add_pip_dependencies("--index-url=http://x/");
       },
       "experiment.spec.environment.pip_dependencies[1]"},
      {[](v1::Experiment* e) {
         e->mutable_spec()->mutable_environment()->add_conda_dependencies("numpy\nscipy");
       },
       "experiment.spec.environment.conda_dependencies[0]"},
  };
  for (const auto& c : cases) {
    v1::Experiment e = Shell("true");
    c.spoil(&e);
    v1::Experiment out;
    grpc::Status st = Create(e, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_NE(st.error_message().find(c.field), std::string::npos)
        << "\"" << st.error_message() << "\" should name " << c.field;
  }
  // Kubernetes quantities the reference crashed on are fine.
  v1::Experiment ok = Shell("true");
  (*ok.mutable_spec()->mutable_spec())["Worker"].set_resources("cpu=500m,memory=2Gi");
  v1::Experiment out;
  ASSERT_TRUE(Create(ok, &out).ok());
  EXPECT_EQ(Count(), 1u);
}

TEST_F(ExperimentTest, StopKillsARunningExperimentAndSaysWhy) {
  v1::Experiment created;
  ASSERT_TRUE(Create(Shell("echo started; exec sleep 600"), &created, "sleeper").ok());
  WaitUntil(created.name(), v1::RUNNING);
  v1::StopExperimentRequest req;
  req.set_name(created.name());
  v1::Experiment stopped;
  ASSERT_TRUE(svc_->stub->StopExperiment(ExperimentCtx().get(), req, &stopped).ok());
  v1::Experiment done = WaitUntil(created.name());
  EXPECT_EQ(done.state(), v1::KILLED);
  EXPECT_EQ(done.state_reason(), "stopped by anonymous");
  // Stopping a finished experiment changes nothing.
  v1::Experiment again;
  ASSERT_TRUE(svc_->stub->StopExperiment(ExperimentCtx().get(), req, &again).ok());
  EXPECT_EQ(again.state(), v1::KILLED);
  EXPECT_EQ(again.history_size(), done.history_size());
}

TEST_F(ExperimentTest, DeletingARunningExperimentRemovesItsProcessesAndRecord) {
  std::string marker = svc_->dir + "/alive";
  v1::Experiment created;
  ASSERT_TRUE(
      Create(Shell(absl::StrCat("while true; do touch ", marker, "; sleep 0.05; done")), &created)
          .ok());
  ASSERT_TRUE(WaitFor([&] { return fs::exists(marker); }, std::chrono::seconds(30)));
  v1::DeleteExperimentRequest req;
  req.set_name(created.name());
  v1::DeleteExperimentResponse resp;
  ASSERT_TRUE(svc_->stub->DeleteExperiment(ExperimentCtx().get(), req, &resp).ok());
  EXPECT_EQ(resp.experiment().name(), created.name());
  v1::GetExperimentRequest get;
  get.set_name(created.name());
  v1::Experiment out;
  EXPECT_EQ(svc_->stub->GetExperiment(ExperimentCtx().get(), get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The loop stops touching the marker: its process group is gone.
  fs::remove(marker);
  ASSERT_TRUE(WaitFor(
      [&] {
        fs::remove(marker);
        return std::system(absl::StrCat("pgrep -f '[t]ouch ", marker, "' >/dev/null").c_str()) != 0;
      },
      std::chrono::seconds(30)));
}

TEST_F(ExperimentTest, ARepeatedRequestIdCreatesOneExperiment) {
  v1::Experiment first, second;
  ASSERT_TRUE(Create(Shell("true"), &first, "", "req-0001").ok());
  ASSERT_TRUE(Create(Shell("true"), &second, "", "req-0001").ok());
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(Count(), 1u);
}

TEST_F(ExperimentTest, ListsPageNewestFirstAndFilterByStateAndLabel) {
  std::vector<std::string> names;
  std::vector<google::protobuf::Timestamp> create_times;
  for (int i = 0; i < 5; ++i) {
    v1::Experiment e = Shell(i == 0 ? "exit 1" : "true");
    (*e.mutable_labels())["team"] = i % 2 == 0 ? "ml" : "ds";
    e.mutable_spec()->set_priority(i * 10);
    v1::Experiment created;
    ASSERT_TRUE(Create(e, &created).ok());
    names.push_back(created.name());
    create_times.push_back(created.create_time());
  }
  for (const auto& n : names) WaitUntil(n);
  // Pages of two, newest first, every experiment once.
  std::vector<std::string> seen;
  v1::ListExperimentsRequest req;
  req.set_parent("projects/p");
  req.set_page_size(2);
  do {
    v1::ListExperimentsResponse page;
    ASSERT_TRUE(svc_->stub->ListExperiments(ExperimentCtx().get(), req, &page).ok());
    EXPECT_LE(page.experiments_size(), 2);
    for (const auto& e : page.experiments()) seen.push_back(e.name());
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  EXPECT_EQ(seen, std::vector<std::string>(names.rbegin(), names.rend()));

  auto filtered = [&](const std::string& filter) {
    v1::ListExperimentsRequest f;
    f.set_parent("projects/p");
    f.set_filter(filter);
    v1::ListExperimentsResponse out;
    grpc::Status st = svc_->stub->ListExperiments(ExperimentCtx().get(), f, &out);
    EXPECT_TRUE(st.ok()) << filter << ": " << st.error_message();
    return out.experiments_size();
  };
  EXPECT_EQ(filtered("state = \"FAILED\""), 1);
  EXPECT_EQ(filtered("state = \"SUCCEEDED\" AND labels.team = \"ml\""), 2);
  EXPECT_EQ(filtered("labels.team:*"), 5);
  // Experiment i: FAILED for 0, SUCCEEDED otherwise; team ml for even i, ds for odd; priority
  // 10 * i; created in order.
  EXPECT_EQ(filtered("state = FAILED OR labels.team = ds"), 3);  // 0, 1, 3
  EXPECT_EQ(filtered("(state = SUCCEEDED OR state = failed) AND labels.team = ml"), 3);
  EXPECT_EQ(filtered("state IN (\"FAILED\", \"KILLED\")"), 1);
  EXPECT_EQ(filtered("state NOT IN (FAILED)"), 4);
  EXPECT_EQ(filtered("state >= SUCCEEDED"), 5);  // every one has finished
  EXPECT_EQ(filtered("state < RUNNING"), 0);
  EXPECT_EQ(filtered("priority >= 20 AND priority < 40"), 2);           // 2, 3
  EXPECT_EQ(filtered("NOT (labels.team = ml AND priority > 0)"), 3);    // 0, 1, 3
  EXPECT_EQ(filtered("priority IN (0, 40) AND framework = PLAIN"), 2);  // 0, 4
  EXPECT_EQ(filtered(absl::StrCat("name = \"", names[1],
                                  "\" OR name = ", names[2].substr(names[2].rfind('/') + 1))),
            2);
  for (size_t i = 1; i < create_times.size(); ++i) {
    ASSERT_LT(google::protobuf::util::TimeUtil::TimestampToMicroseconds(create_times[i - 1]),
              google::protobuf::util::TimeUtil::TimestampToMicroseconds(create_times[i]));
  }
  EXPECT_EQ(filtered(absl::StrCat(
                "create_time >= \"", google::protobuf::util::TimeUtil::ToString(create_times[1]),
                "\" AND create_time < \"",
                google::protobuf::util::TimeUtil::ToString(create_times[4]), "\"")),
            3);  // 1, 2, 3
  EXPECT_EQ(filtered("create_time > 2000-01-01T00:00:00+02:00 AND owner = anonymous"), 5);
  EXPECT_EQ(filtered("owner = \"users/nobody\" OR create_time < 2000-01-01"), 0);

  for (const auto& [filter, message] : std::vector<std::pair<std::string, std::string>>{
           {"state = \"DONE\"",
            "filter: unknown value \"DONE\" for \"state\" at position 9; use PENDING, ACCEPTED, "
            "CREATED, RUNNING, SUCCEEDED, FAILED, KILLED"},
           {"state = RUNNING OR priority > high", "\"priority\" takes an integer"},
           {"labels.team > ml", "\">\" does not apply to \"labels.team\""},
           {"user = alice",
            "filterable: name, state, owner, framework, priority, labels.<key>, "
            "create_time, update_time"},
           {"(state = RUNNING", "filter: expected AND, OR or \")\" at position 17"}}) {
    v1::ListExperimentsRequest bad;
    bad.set_parent("projects/p");
    bad.set_filter(filter);
    v1::ListExperimentsResponse out;
    grpc::Status st = svc_->stub->ListExperiments(ExperimentCtx().get(), bad, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << filter;
    EXPECT_NE(st.error_message().find(message), std::string::npos)
        << filter << ": " << st.error_message();
  }
}

TEST_F(ExperimentTest, UpdateChangesLabelsAndDescriptionOnly) {
  v1::Experiment created;
  ASSERT_TRUE(Create(Shell("true"), &created, "upd").ok());
  v1::UpdateExperimentRequest req;
  req.mutable_experiment()->set_name(created.name());
  (*req.mutable_experiment()->mutable_labels())["stage"] = "tuned";
  req.mutable_experiment()->set_description("second try");
  req.mutable_update_mask()->add_paths("labels");
  v1::Experiment updated;
  ASSERT_TRUE(svc_->stub->UpdateExperiment(ExperimentCtx().get(), req, &updated).ok());
  EXPECT_EQ(updated.labels().at("stage"), "tuned");
  EXPECT_EQ(updated.description(), "") << "outside the mask";
  req.mutable_update_mask()->set_paths(0, "spec");
  grpc::Status st = svc_->stub->UpdateExperiment(ExperimentCtx().get(), req, &updated);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // An unknown task's log is NOT_FOUND naming it.
  WaitUntil(created.name());
  v1::GetExperimentLogsRequest logs;
  logs.set_name(created.name());
  logs.set_task("ps-3");
  v1::ExperimentLogs chunk;
  st = svc_->stub->GetExperimentLogs(ExperimentCtx().get(), logs, &chunk);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("ps-3"), std::string::npos);
}

TEST_F(ExperimentTest, AFullClusterKeepsJobsAcceptedInOrderAndRefusesOnesThatNeverFit) {
  svc_->process.Kill();
  auto capped = StartExperimentService(nullptr, "  max_running_tasks: 2\n");
  ASSERT_TRUE(capped.ok()) << capped.status();
  svc_ = std::move(*capped);
  std::string gate = svc_->dir + "/open";
  v1::Experiment pair = Shell(absl::StrCat("while [ ! -e ", gate, " ]; do sleep 0.05; done"), 2);
  v1::Experiment first, second, too_big;
  ASSERT_TRUE(Create(pair, &first).ok());
  WaitUntil(first.name(), v1::RUNNING);
  ASSERT_TRUE(Create(Shell("true"), &second).ok());
  ASSERT_TRUE(WaitFor([&] {
    v1::Experiment e = Get(second.name());
    return e.state() == v1::ACCEPTED && absl::StrContains(e.state_reason(), "2 of 2 tasks running");
  }));
  ASSERT_TRUE(Create(Shell("true", 3), &too_big).ok());
  v1::Experiment refused = WaitUntil(too_big.name());
  EXPECT_EQ(refused.state(), v1::FAILED);
  EXPECT_TRUE(absl::StrContains(refused.state_reason(), "needs 3 tasks")) << refused.state_reason();
  std::ofstream(gate) << "go";
  EXPECT_EQ(WaitUntil(first.name()).state(), v1::SUCCEEDED);
  EXPECT_EQ(WaitUntil(second.name()).state(), v1::SUCCEEDED);
}

TEST_F(ExperimentTest, MaxRunTimeStopsAnExperimentAndSaysWhy) {
  v1::Experiment e = Shell("exec sleep 600");
  e.mutable_spec()->mutable_max_run_time()->set_nanos(300 * 1000 * 1000);
  v1::Experiment created;
  ASSERT_TRUE(Create(e, &created).ok());
  v1::Experiment done = WaitUntil(created.name());
  EXPECT_EQ(done.state(), v1::KILLED);
  EXPECT_EQ(done.state_reason(), "max run time exceeded");
}

TEST_F(ExperimentTest, HigherPriorityRunsFirstWhenTheClusterIsFull) {
  v1::Experiment low = Shell("true"), high = Shell("true");
  high.mutable_spec()->set_priority(10);
  auto [low_done, high_done] = RunTwoBehindAHolder("", low, high, nullptr);
  EXPECT_LT(LaunchedAt(high_done), LaunchedAt(low_done))
      << "the later but higher-priority experiment was launched first";
}

// No starvation: with priority_aging_seconds 1, a low-priority job that has waited 3 s goes
// before a priority-2 job submitted just now.
TEST_F(ExperimentTest, AnOldLowPriorityJobOutranksANewerHigherOneByAging) {
  v1::Experiment old_low = Shell("true"), new_high = Shell("true");
  new_high.mutable_spec()->set_priority(2);
  auto [low_done, high_done] = RunTwoBehindAHolder(
      "priority_aging_seconds: 1\n", old_low, new_high, [](const v1::Experiment& low) {
        // Aging is a matter of time: the low job waits until it has aged past priority 2 (the
        // policy under test is time itself, not another component's progress).
        const auto created = db::Timestamp::FromProto(low.create_time()).ToTimePoint();
        EXPECT_TRUE(WaitFor(
            [&] { return std::chrono::system_clock::now() - created > std::chrono::seconds(3); },
            std::chrono::seconds(10)));
      });
  EXPECT_LT(LaunchedAt(low_done), LaunchedAt(high_done))
      << "the old low-priority experiment, aged to priority 3, was launched first";
}

// With preemption on, a higher-priority job waiting for room stops a lower-priority one: it gets
// SIGTERM and the grace to checkpoint, is KILLED saying by whom, and is requeued as attempt 2,
// which runs once the higher one is done. The requeue is not one of its retries: attempt 2
// fails, and its one retry (attempt 3) succeeds.
TEST_F(ExperimentTest, AHigherPriorityJobPreemptsALowerOneWhichIsRequeued) {
  svc_->process.Kill();
  auto capped = StartExperimentService(nullptr, "  max_running_tasks: 1\npreemption: true\n");
  ASSERT_TRUE(capped.ok()) << capped.status();
  svc_ = std::move(*capped);
  const std::string checkpoint = svc_->dir + "/checkpoint";
  v1::Experiment low, high;
  v1::Experiment preemptible = Shell(absl::StrCat(
      "case $SUBMARINE_EXPERIMENT_ATTEMPT in 2) exit 1;; 3) exit 0;; esac; trap 'echo saved > ",
      checkpoint, "; exit 143' TERM; while :; do sleep 1 & wait $! 2>/dev/null; done"));
  preemptible.mutable_spec()->mutable_retry_policy()->set_max_retries(1);
  ASSERT_TRUE(Create(preemptible, &low, "low").ok());
  WaitUntil(low.name(), v1::RUNNING);
  v1::Experiment urgent = Shell("true");
  urgent.mutable_spec()->set_priority(5);
  ASSERT_TRUE(Create(urgent, &high, "high").ok());

  v1::Experiment high_done = WaitUntil(high.name());
  EXPECT_EQ(high_done.state(), v1::SUCCEEDED) << high_done.state_reason();
  v1::Experiment low_done = WaitUntil(low.name());
  EXPECT_EQ(low_done.state(), v1::SUCCEEDED) << low_done.state_reason();
  EXPECT_EQ(low_done.attempt(), 3) << "preempted, then failed once and retried";
  std::ifstream saved(checkpoint);
  std::string word;
  saved >> word;
  EXPECT_EQ(word, "saved") << "the preempted job checkpointed on SIGTERM";

  const std::string why = absl::StrCat("preempted by ", high.name(), " (priority 5 over 0)");
  int64_t killed_at = 0;
  bool requeued = false;
  for (const auto& h : low_done.history()) {
    if (h.attempt() == 1 && h.state() == v1::KILLED) {
      EXPECT_EQ(h.reason(), why);
      killed_at = db::Timestamp::FromProto(h.time()).micros;
    }
    if (h.attempt() == 2 && h.state() == v1::PENDING) {
      requeued = true;
      EXPECT_EQ(h.reason(), "requeued after being " + why);
    }
  }
  EXPECT_NE(killed_at, 0) << "attempt 1 was KILLED";
  EXPECT_TRUE(requeued) << "attempt 2 started PENDING";
  EXPECT_LE(killed_at, LaunchedAt(high_done)) << "the room was freed before the urgent job ran";
}

// Fair share: with the cluster full, a freed slot goes to the project running the fewest tasks,
// before an older job of equal priority whose project already runs one.
TEST_F(ExperimentTest, AFreedSlotGoesToTheProjectRunningFewerTasks) {
  svc_->process.Kill();
  auto capped = StartExperimentService(nullptr, "  max_running_tasks: 2\n");
  ASSERT_TRUE(capped.ok()) << capped.status();
  svc_ = std::move(*capped);
  auto held_until = [](const std::string& gate) {
    return Shell(absl::StrCat("while [ ! -e ", gate, " ]; do sleep 0.05; done"));
  };
  const std::string gate_a = svc_->dir + "/open-a", gate_c = svc_->dir + "/open-c";
  v1::Experiment holder_a, holder_c, older, newer;
  ASSERT_TRUE(Create(held_until(gate_a), &holder_a, "holder", "", "projects/a").ok());
  ASSERT_TRUE(Create(held_until(gate_c), &holder_c, "holder", "", "projects/c").ok());
  WaitUntil(holder_a.name(), v1::RUNNING);
  WaitUntil(holder_c.name(), v1::RUNNING);
  ASSERT_TRUE(Create(Shell("true"), &older, "older", "", "projects/a").ok());
  ASSERT_TRUE(Create(Shell("true"), &newer, "newer", "", "projects/b").ok());
  ASSERT_TRUE(WaitFor([&] {
    return Get(older.name()).state() == v1::ACCEPTED && Get(newer.name()).state() == v1::ACCEPTED;
  }));
  std::ofstream(gate_c) << "go";  // one slot frees while projects/a still runs a task
  v1::Experiment newer_done = WaitUntil(newer.name());
  std::ofstream(gate_a) << "go";
  v1::Experiment older_done = WaitUntil(older.name());
  ASSERT_EQ(newer_done.state(), v1::SUCCEEDED);
  ASSERT_EQ(older_done.state(), v1::SUCCEEDED);
  EXPECT_LT(LaunchedAt(newer_done), LaunchedAt(older_done))
      << "projects/b, running nothing, went before the older job of projects/a";
}

TEST_F(ExperimentTest, RetryRunsAFinishedExperimentAgainAsANewAttempt) {
  v1::Experiment created;
  ASSERT_TRUE(Create(Shell("exit 3"), &created, "flaky").ok());
  ASSERT_EQ(WaitUntil(created.name()).state(), v1::FAILED);
  v1::RetryExperimentRequest retry;
  retry.set_name(created.name());
  v1::Experiment again;
  ASSERT_TRUE(svc_->stub->RetryExperiment(ExperimentCtx().get(), retry, &again).ok());
  EXPECT_EQ(again.attempt(), 2);
  EXPECT_EQ(again.state(), v1::PENDING);
  EXPECT_EQ(again.tasks_size(), 0);
  v1::Experiment done = WaitUntil(created.name());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.attempt(), 2);
  int second = 0;
  for (const auto& h : done.history()) second += h.attempt() == 2;
  EXPECT_EQ(second, 5) << "PENDING, ACCEPTED, CREATED, RUNNING, FAILED of attempt 2";

  // Only a finished experiment runs again.
  v1::Experiment sleeper;
  ASSERT_TRUE(Create(Shell("exec sleep 600"), &sleeper).ok());
  WaitUntil(sleeper.name(), v1::RUNNING);
  retry.set_name(sleeper.name());
  grpc::Status st = svc_->stub->RetryExperiment(ExperimentCtx().get(), retry, &again);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "RUNNING")) << st.error_message();
  // Tasks outlive the service by design: nothing of this test may keep sleeping after it.
  v1::DeleteExperimentRequest del;
  del.set_name(sleeper.name());
  v1::DeleteExperimentResponse deleted;
  EXPECT_TRUE(svc_->stub->DeleteExperiment(ExperimentCtx().get(), del, &deleted).ok());
}

TEST_F(ExperimentTest, TheRetryPolicyRetriesAFailedJobUntilItSucceeds) {
  // Fails on its first two attempts (a counter in a file outside the fresh working dirs).
  std::string counter = svc_->dir + "/attempts";
  v1::Experiment e =
      Shell(absl::StrCat("n=$(cat ", counter, " 2>/dev/null || echo 0); n=$((n+1)); ", "echo $n > ",
                         counter, "; [ $n -ge 3 ]"));
  e.mutable_spec()->mutable_retry_policy()->set_max_retries(2);
  v1::Experiment created;
  ASSERT_TRUE(Create(e, &created).ok());
  v1::Experiment done;
  ASSERT_TRUE(WaitFor(
      [&] {
        done = Get(created.name());
        return done.state() == v1::SUCCEEDED ||
               (done.attempt() == 3 && done.state() >= v1::SUCCEEDED);
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.attempt(), 3);
  std::string reasons;
  for (const auto& h : done.history()) absl::StrAppend(&reasons, h.reason(), "\n");
  EXPECT_TRUE(absl::StrContains(reasons, "retry 1 of 2 after: task worker-0 failed")) << reasons;
  EXPECT_TRUE(absl::StrContains(reasons, "retry 2 of 2")) << reasons;
}

TEST_F(ExperimentTest, CloneCopiesTheSpecWithOverrides) {
  v1::Experiment e = Shell("echo \"A=$A\"");
  (*e.mutable_spec()->mutable_meta()->mutable_env_vars())["A"] = "original";
  (*e.mutable_labels())["team"] = "ml";
  v1::Experiment source;
  ASSERT_TRUE(Create(e, &source, "source").ok());
  v1::CloneExperimentRequest clone;
  clone.set_name(source.name());
  clone.set_experiment_id("copy");
  (*clone.mutable_env_vars())["A"] = "cloned";
  v1::Experiment copy;
  ASSERT_TRUE(svc_->stub->CloneExperiment(ExperimentCtx().get(), clone, &copy).ok());
  EXPECT_EQ(copy.name(), "projects/p/experiments/copy");
  EXPECT_EQ(copy.labels().at("team"), "ml");
  ASSERT_EQ(WaitUntil(copy.name()).state(), v1::SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(Logs(copy.name()), "A=cloned")) << Logs(copy.name());
  clone.set_name("projects/p/experiments/none");
  EXPECT_EQ(svc_->stub->CloneExperiment(ExperimentCtx().get(), clone, &copy).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A real distributed job: two PyTorch replicas (gloo, CPU) train with DistributedDataParallel,
// which all-reduces gradients between them; they end with identical weights only if the
// rendezvous variables the platform set (MASTER_ADDR/PORT, WORLD_SIZE, RANK) let them talk.
TEST_F(ExperimentTest, TwoPyTorchReplicasTrainTogether) {
  v1::Experiment e;
  e.mutable_spec()->mutable_meta()->set_framework("PyTorch");
  for (const char* a :
       {"/usr/bin/python3", SUBMARINE_SOURCE_DIR "/deploy/local/examples/train_ddp.py"}) {
    e.mutable_spec()->mutable_meta()->add_args(a);
  }
  (*e.mutable_spec()->mutable_spec())["Master"].set_replicas(1);
  (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(1);
  v1::Experiment created;
  ASSERT_TRUE(Create(e, &created, "ddp").ok());
  v1::Experiment done = WaitUntil(created.name());
  std::string master = Logs(created.name(), "master-0"), worker = Logs(created.name(), "worker-0");
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.state_reason() << "\n" << master << worker;
  EXPECT_TRUE(absl::StrContains(master, "rank 0 of 2")) << master;
  EXPECT_TRUE(absl::StrContains(worker, "rank 1 of 2")) << worker;
  EXPECT_TRUE(absl::StrContains(master, "weights identical on all 2 replicas: True")) << master;
  EXPECT_TRUE(absl::StrContains(worker, "weights identical on all 2 replicas: True")) << worker;
}

// kill -9 of the service while 20 experiments run. While it is down, some end (5 succeed, 5 fail),
// one's workload vanishes (its files and processes removed) and one's record is removed from the
// database. After the restart every experiment reaches its true final state — the ones still
// running are re-adopted and finish —, the vanished one is FAILED with the reason (never
// deleted), the orphaned workload is removed, no state goes backwards and no process is left.
TEST_F(ExperimentTest, AfterKillMinus9EveryExperimentReachesItsTrueFinalState) {
  const std::string early = svc_->dir + "/early", late = svc_->dir + "/late";
  const std::string marker = absl::StrCat("crash-test-", ::getpid());
  std::vector<v1::Experiment> created(20);
  for (int i = 0; i < 20; ++i) {
    // Groups of four: 0 and 1 end while the service is down (0 succeeds, 1 fails with 7), 2 and
    // 3 end after the restart.
    const std::string& gate = i % 4 < 2 ? early : late;
    std::string cmd = absl::StrCat(": ", marker, "-", i, "; while [ ! -e ", gate,
                                   " ]; do sleep 0.05; done; exit ", i % 4 == 1 ? 7 : 0);
    ASSERT_TRUE(Create(Shell(cmd), &created[i], absl::StrCat("crash-", i)).ok());
  }
  for (const auto& e : created) WaitUntil(e.name(), v1::RUNNING);
  svc_->process.Kill();

  std::ofstream(early) << "go";
  // #3's workload vanishes: its files first, then its processes.
  std::string hex = created[3].uid();
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  fs::remove_all(absl::StrCat(svc_->compute_dir, "/workloads/exp-", hex.substr(0, 20), "-1"));
  ASSERT_EQ(std::system(absl::StrCat("pkill -KILL -f '[:] ", marker, "-3;'").c_str()), 0);
  // #7's record vanishes: its workload is an orphan now.
  {
    pqxx::connection conn(TestPostgres::Get().ConnInfo(svc_->dbname));
    pqxx::work tx(conn);
    tx.exec_params("DELETE FROM experiment.experiments WHERE experiment_id = $1", "crash-7");
    tx.commit();
  }

  auto restarted = StartExperimentService(svc_.get());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  svc_ = std::move(*restarted);
  std::ofstream(late) << "go";
  for (int i = 0; i < 20; ++i) {
    if (i == 7) continue;
    v1::Experiment done = WaitUntil(created[i].name());
    v1::State expected = i == 3 ? v1::FAILED : i % 4 == 1 ? v1::FAILED : v1::SUCCEEDED;
    EXPECT_EQ(done.state(), expected) << i << ": " << done.state_reason();
    if (i == 3) {
      EXPECT_TRUE(absl::StrContains(done.state_reason(), "no longer exists"))
          << done.state_reason();
    }
    if (i % 4 == 1) {
      EXPECT_EQ(done.tasks(0).exit_code(), 7);
    }
    auto states = History(done);
    EXPECT_TRUE(std::is_sorted(states.begin(), states.end())) << i;
    EXPECT_EQ(std::set<v1::State>(states.begin(), states.end()).size(), states.size()) << i;
  }
  // The orphan is removed by the controller, and nothing of any experiment is left running.
  EXPECT_TRUE(WaitFor(
      [&] {
        return std::system(absl::StrCat("pgrep -f '[:] ", marker, "-' >/dev/null").c_str()) != 0;
      },
      std::chrono::seconds(30)))
      << "processes of the test's experiments are still running";
}

}  // namespace
}  // namespace submarine::testing
