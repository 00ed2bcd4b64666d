// The experiment service with a YARN compute cluster (the fake ResourceManager of
// tests/support/fake_yarn, which runs every component instance as a local process): an
// experiment that names the cluster runs there as a YARN service through every state to
// SUCCEEDED with its logs; one that fails says which task and its exit code; a cluster name used
// twice across kubernetes and yarn is refused at start-up.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/util/wait.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/fake_yarn/fake_yarn_rm.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;

class ExperimentYarnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("experiment-yarn");
    FakeYarnOptions options;
    options.work_dir = dir_ + "/nodemanager";
    auto rm = FakeYarnRm::Start(options);
    ASSERT_TRUE(rm.ok()) << rm.status();
    rm_ = std::move(*rm);
    auto p = StartExperimentService(nullptr, YarnYaml());
    ASSERT_TRUE(p.ok()) << p.status();
    svc_ = std::move(*p);
  }

  std::string YarnYaml() const {
    return absl::StrCat("yarn:\n  - name: yarn\n    rm_url: ", rm_->url(),
                        "\n    user: alice\n    queue: research\n    logs_dir: ", dir_,
                        "/yarn-logs\n    registry_domain: yarn.test\n    nodemanager_url: "
                        "\"http://{host}:",
                        rm_->port(), "\"\n");
  }

  static v1::Experiment OnYarn(const std::string& cmd, int replicas = 1) {
    v1::Experiment e;
    e.mutable_spec()->mutable_meta()->set_name("yarn");
    e.mutable_spec()->mutable_meta()->set_cmd(cmd);
    e.mutable_spec()->set_compute_cluster("yarn");
    (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(replicas);
    return e;
  }

  grpc::Status Create(const v1::Experiment& e, v1::Experiment* out) {
    return CreateExperimentIn(*svc_, e, out);
  }
  v1::Experiment WaitFinal(const std::string& name) { return WaitExperimentFinal(*svc_, name); }
  std::string Logs(const std::string& name, const std::string& task) {
    return ExperimentTaskLog(*svc_, name, task);
  }

  std::string dir_;
  std::unique_ptr<FakeYarnRm> rm_;
  std::unique_ptr<ExperimentProcess> svc_;
};

TEST_F(ExperimentYarnTest, RunsAsAYarnServiceThroughEveryStateWithItsLogs) {
  v1::Experiment created;
  ASSERT_TRUE(
      Create(OnYarn("echo \"replica $SUBMARINE_TASK_INDEX of $SUBMARINE_EXPERIMENT\"", 2), &created)
          .ok());
  v1::Experiment done = WaitFinal(created.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.state_reason();
  std::vector<v1::State> states;
  for (const auto& h : done.history()) states.push_back(h.state());
  EXPECT_EQ(states, (std::vector<v1::State>{v1::PENDING, v1::ACCEPTED, v1::CREATED, v1::RUNNING,
                                            v1::SUCCEEDED}));
  EXPECT_EQ(done.reproducibility().backend(), "yarn");
  EXPECT_EQ(done.reproducibility().compute_cluster(), "computeClusters/yarn");
  ASSERT_EQ(done.tasks_size(), 2);
  EXPECT_EQ(Logs(done.name(), "worker-1"), absl::StrCat("replica 1 of ", done.name(), "\n"));

  // The RM received one service with one component of two containers, in the configured queue.
  ASSERT_EQ(rm_->created().size(), 1u);
  const nlohmann::json service = rm_->created()[0];
  EXPECT_EQ(service["queue"], "research");
  ASSERT_EQ(service["components"].size(), 1u);
  EXPECT_EQ(service["components"][0]["number_of_containers"], 2);
  EXPECT_EQ(service["components"][0]["restart_policy"], "NEVER");

  // The logs outlive the experiment's service in YARN.
  v1::DeleteExperimentRequest del;
  del.set_name(done.name());
  v1::DeleteExperimentResponse deleted;
  ASSERT_TRUE(svc_->stub->DeleteExperiment(ExperimentCtx().get(), del, &deleted).ok());
}

TEST_F(ExperimentYarnTest, AFailedTaskFailsTheExperimentSayingWhichAndItsExitCode) {
  v1::Experiment created;
  ASSERT_TRUE(Create(OnYarn("echo boom >&2; exit 7"), &created).ok());
  v1::Experiment done = WaitFinal(created.name());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_TRUE(absl::StrContains(done.state_reason(), "worker-0")) << done.state_reason();
  EXPECT_TRUE(absl::StrContains(done.state_reason(), "exit code 7")) << done.state_reason();
  EXPECT_EQ(Logs(done.name(), "worker-0"), "boom\n");
}

TEST_F(ExperimentYarnTest, AClusterNameUsedTwiceIsRefusedAtStartUp) {
  auto p = StartExperimentService(
      nullptr, absl::StrCat(YarnYaml(), "  - name: yarn\n    rm_url: ", rm_->url(),
                            "\n    user: bob\n    logs_dir: ", dir_, "/other-logs\n"));
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().ToString(), "yarn[1].name")) << p.status();
}

}  // namespace
}  // namespace submarine::testing
