// Compute clusters as resources: the experiment service builds its backends from the
// environment service's computeClusters/* records (both real processes on real PostgreSQL; a
// YARN cluster is the fake ResourceManager of tests/support/fake_yarn). A cluster created
// through the API runs experiments at once; its allowed projects and capacity are enforced when
// an experiment is submitted, and its capacity again when experiments launch (the next one
// waits, saying why); a deleted cluster refuses new experiments.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/util/wait.h"
#include "submarine/environment/v1/compute_cluster.grpc.pb.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/fake_yarn/fake_yarn_rm.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;
namespace env = submarine::environment::v1;

class ExperimentClustersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("experiment-clusters");
    FakeYarnOptions options;
    options.work_dir = dir_ + "/nodemanager";
    auto rm = FakeYarnRm::Start(options);
    ASSERT_TRUE(rm.ok()) << rm.status();
    rm_ = std::move(*rm);
    auto both = StartExperimentWithEnvironment(dir_, "cluster_sync_interval_ms: 300\n");
    ASSERT_TRUE(both.ok()) << both.status();
    env_ = std::move(both->env);
    svc_ = std::move(both->svc);
    clusters_ = env::ComputeClusterService::NewStub(env_->channel);
  }

  // A YARN cluster on the fake RM.
  grpc::Status CreateCluster(const std::string& id, const std::string& capacity,
                             const std::vector<std::string>& projects = {}) {
    env::CreateComputeClusterRequest req;
    req.set_compute_cluster_id(id);
    auto* y = req.mutable_compute_cluster()->mutable_yarn();
    y->set_rm_url(rm_->url());
    y->set_user("alice");
    y->set_registry_domain("yarn.test");
    y->set_nodemanager_url(absl::StrCat("http://{host}:", rm_->port()));
    req.mutable_compute_cluster()->set_capacity(capacity);
    for (const auto& p : projects) req.mutable_compute_cluster()->add_allowed_projects(p);
    env::ComputeCluster out;
    return clusters_->CreateComputeCluster(Ctx().get(), req, &out);
  }

  static v1::Experiment On(const std::string& cluster, const std::string& cmd,
                           const std::string& resources = "", int replicas = 1) {
    v1::Experiment e;
    e.mutable_spec()->mutable_meta()->set_name("on-" + cluster);
    e.mutable_spec()->mutable_meta()->set_cmd(cmd);
    e.mutable_spec()->set_compute_cluster(cluster);
    auto& worker = (*e.mutable_spec()->mutable_spec())["Worker"];
    worker.set_replicas(replicas);
    worker.set_resources(resources);
    return e;
  }

  v1::Experiment Get(const std::string& name) {
    v1::GetExperimentRequest req;
    req.set_name(name);
    v1::Experiment e;
    EXPECT_TRUE(svc_->stub->GetExperiment(ExperimentCtx().get(), req, &e).ok());
    return e;
  }

  std::string dir_;
  std::unique_ptr<FakeYarnRm> rm_;
  std::unique_ptr<EnvironmentProcess> env_;
  std::unique_ptr<env::ComputeClusterService::Stub> clusters_;
  std::unique_ptr<ExperimentProcess> svc_;
};

TEST_F(ExperimentClustersTest, AClusterCreatedThroughTheApiRunsExperimentsAtOnce) {
  v1::Experiment refused;
  grpc::Status unknown = CreateExperimentIn(*svc_, On("yarn-a", "true"), &refused);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(unknown), "experiment.spec.compute_cluster") << unknown.error_message();

  ASSERT_TRUE(CreateCluster("yarn-a", "").ok());
  // No waiting for the periodic re-read: naming a cluster not seen yet reads the records.
  v1::Experiment created;
  grpc::Status st = CreateExperimentIn(*svc_, On("yarn-a", "echo on yarn-a"), &created);
  ASSERT_TRUE(st.ok()) << st.error_message();
  v1::Experiment done = WaitExperimentFinal(*svc_, created.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.state_reason();
  EXPECT_EQ(done.reproducibility().backend(), "yarn");
  EXPECT_EQ(done.reproducibility().compute_cluster(), "computeClusters/yarn-a");
  EXPECT_EQ(ExperimentTaskLog(*svc_, done.name(), "worker-0"), "on yarn-a\n");
  EXPECT_EQ(rm_->created().size(), 1u);
}

TEST_F(ExperimentClustersTest, AllowedProjectsAndCapacityAreCheckedOnSubmit) {
  ASSERT_TRUE(CreateCluster("vision-only", "", {"projects/vision"}).ok());
  v1::Experiment out;
  grpc::Status not_allowed = CreateExperimentIn(*svc_, On("vision-only", "true"), &out);
  EXPECT_EQ(not_allowed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(not_allowed), "experiment.spec.compute_cluster");
  EXPECT_TRUE(absl::StrContains(not_allowed.error_message(), "projects/p may not run on"))
      << not_allowed.error_message();

  ASSERT_TRUE(CreateCluster("small", "cpu=2,memory=1Gi").ok());
  grpc::Status too_big = CreateExperimentIn(*svc_, On("small", "true", "cpu=1", 3), &out);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(too_big), "experiment.spec.compute_cluster");
  EXPECT_TRUE(absl::StrContains(too_big.error_message(), "cpu=3")) << too_big.error_message();
  EXPECT_TRUE(CreateExperimentIn(*svc_, On("small", "true", "cpu=1", 2), &out).ok());

  // Nothing was stored for the refused ones.
  v1::ListExperimentsRequest list;
  list.set_parent("projects/p");
  v1::ListExperimentsResponse listed;
  ASSERT_TRUE(svc_->stub->ListExperiments(ExperimentCtx().get(), list, &listed).ok());
  EXPECT_EQ(listed.experiments_size(), 1);
}

TEST_F(ExperimentClustersTest, TheNextExperimentWaitsForRoomWithinTheCapacity) {
  ASSERT_TRUE(CreateCluster("one-cpu", "cpu=1").ok());
  const std::string go = dir_ + "/go";
  v1::Experiment first, second;
  ASSERT_TRUE(
      CreateExperimentIn(
          *svc_,
          On("one-cpu", absl::StrCat("while [ ! -e ", go, " ]; do sleep 0.05; done"), "cpu=1"),
          &first)
          .ok());
  ASSERT_TRUE(
      WaitFor([&] { return Get(first.name()).state() == v1::RUNNING; }, std::chrono::seconds(30)));
  ASSERT_TRUE(CreateExperimentIn(*svc_, On("one-cpu", "echo second", "cpu=500m"), &second).ok());
  v1::Experiment waiting;
  ASSERT_TRUE(WaitFor(
      [&] {
        waiting = Get(second.name());
        return absl::StrContains(waiting.state_reason(),
                                 "waiting for room on computeClusters/one-cpu");
      },
      std::chrono::seconds(30)))
      << v1::State_Name(waiting.state()) << ": " << waiting.state_reason();
  EXPECT_EQ(waiting.state(), v1::ACCEPTED);
  EXPECT_TRUE(absl::StrContains(waiting.state_reason(), "cpu=1 of cpu=1 held, cpu=500m needed"))
      << waiting.state_reason();

  std::ofstream(go).put('\n');
  v1::Experiment a = WaitExperimentFinal(*svc_, first.name());
  v1::Experiment b = WaitExperimentFinal(*svc_, second.name());
  EXPECT_EQ(a.state(), v1::SUCCEEDED) << a.state_reason();
  ASSERT_EQ(b.state(), v1::SUCCEEDED) << b.state_reason();
  // The second one launched only after the first had ended.
  auto time_of = [](const v1::Experiment& e, v1::State state) {
    for (const auto& h : e.history()) {
      if (h.state() == state) return int64_t{h.time().seconds()} * 1000000000 + h.time().nanos();
    }
    return int64_t{0};
  };
  EXPECT_GE(time_of(b, v1::CREATED), time_of(a, v1::SUCCEEDED));
}

TEST_F(ExperimentClustersTest, ADeletedClusterRefusesNewExperiments) {
  ASSERT_TRUE(CreateCluster("short-lived", "").ok());
  v1::Experiment out;
  ASSERT_TRUE(CreateExperimentIn(*svc_, On("short-lived", "true"), &out).ok());
  ASSERT_EQ(WaitExperimentFinal(*svc_, out.name()).state(), v1::SUCCEEDED);

  env::DeleteComputeClusterRequest del;
  del.set_name("computeClusters/short-lived");
  env::DeleteComputeClusterResponse deleted;
  ASSERT_TRUE(clusters_->DeleteComputeCluster(Ctx().get(), del, &deleted).ok());
  // Refused once the service has re-read the records (every 300 ms here).
  grpc::Status st;
  ASSERT_TRUE(WaitFor(
      [&] {
        st = CreateExperimentIn(*svc_, On("short-lived", "true"), &out);
        return st.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
      },
      std::chrono::seconds(30)))
      << st.error_message();
  EXPECT_EQ(ErrorField(st), "experiment.spec.compute_cluster");
}

}  // namespace
}  // namespace submarine::testing
