// Compute clusters (computeClusters/*) in the environment service, as a real process on a real
// PostgreSQL, over gRPC and through the gateway's REST face: the built-in local cluster, create /
// get / list / update / delete, every bad input refused naming its field with nothing stored, a
// connection whose kind cannot change, etags, and the events each change publishes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "submarine/environment/v1/compute_cluster.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/support/http_client.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::environment::v1;

class ComputeClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartEnvironment();
    ASSERT_TRUE(p.ok()) << p.status();
    env_ = std::move(*p);
    stub_ = v1::ComputeClusterService::NewStub(env_->channel);
  }

  static v1::ComputeCluster Kubernetes() {
    v1::ComputeCluster c;
    c.set_description("the GPU cluster");
    auto* k = c.mutable_kubernetes();
    k->set_kubeconfig_credential("platform/credentials/gpu-a-kubeconfig");
    k->set_namespace_("ml-jobs");
    c.set_capacity("cpu=64,memory=256Gi,nvidia.com/gpu=8");
    c.add_allowed_projects("projects/vision");
    return c;
  }

  grpc::Status Create(const std::string& id, const v1::ComputeCluster& c, v1::ComputeCluster* out) {
    v1::CreateComputeClusterRequest req;
    req.set_compute_cluster_id(id);
    *req.mutable_compute_cluster() = c;
    return stub_->CreateComputeCluster(Ctx().get(), req, out);
  }

  std::vector<std::string> Names(const std::string& filter = "") {
    v1::ListComputeClustersRequest req;
    req.set_filter(filter);
    v1::ListComputeClustersResponse resp;
    grpc::Status st = stub_->ListComputeClusters(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<std::string> names;
    for (const auto& c : resp.compute_clusters()) names.push_back(c.name());
    return names;
  }

  std::unique_ptr<EnvironmentProcess> env_;
  std::unique_ptr<v1::ComputeClusterService::Stub> stub_;
};

TEST_F(ComputeClusterTest, TheLocalClusterExistsFromTheFirstStartAndCannotBeDeleted) {
  v1::GetComputeClusterRequest get;
  get.set_name("computeClusters/local");
  v1::ComputeCluster local;
  ASSERT_TRUE(stub_->GetComputeCluster(Ctx().get(), get, &local).ok());
  EXPECT_EQ(local.kind(), "local");
  EXPECT_TRUE(local.has_local());
  EXPECT_EQ(Names(), std::vector<std::string>{"computeClusters/local"});

  v1::DeleteComputeClusterRequest del;
  del.set_name("computeClusters/local");
  v1::DeleteComputeClusterResponse deleted;
  grpc::Status st = stub_->DeleteComputeCluster(Ctx().get(), del, &deleted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "BUILTIN_CLUSTER");

  // Its policy can change (who may use it, its capacity); it stays local.
  v1::UpdateComputeClusterRequest update;
  update.mutable_compute_cluster()->set_name("computeClusters/local");
  update.mutable_compute_cluster()->set_capacity("cpu=4");
  v1::ComputeCluster updated;
  ASSERT_TRUE(stub_->UpdateComputeCluster(Ctx().get(), update, &updated).ok());
  EXPECT_EQ(updated.capacity(), "cpu=4");
  EXPECT_TRUE(updated.has_local());

  // A restart does not seed it twice.
  const std::string dbname = env_->dbname, dir = env_->dir;
  env_.reset();  // stops the process
  auto again = StartEnvironment(dbname, dir);
  ASSERT_TRUE(again.ok()) << again.status();
  env_ = std::move(*again);
  stub_ = v1::ComputeClusterService::NewStub(env_->channel);
  EXPECT_EQ(Names(), std::vector<std::string>{"computeClusters/local"});
}

TEST_F(ComputeClusterTest, CreateGetListUpdateAndDeleteAKubernetesCluster) {
  v1::ComputeCluster created;
  ASSERT_TRUE(Create("gpu-a", Kubernetes(), &created).ok());
  EXPECT_EQ(created.name(), "computeClusters/gpu-a");
  EXPECT_EQ(created.kind(), "kubernetes");
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  v1::ComputeCluster again;
  grpc::Status dup = Create("gpu-a", Kubernetes(), &again);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  EXPECT_EQ(Names(), (std::vector<std::string>{"computeClusters/local", "computeClusters/gpu-a"}));
  EXPECT_EQ(Names("kind = \"kubernetes\""), std::vector<std::string>{"computeClusters/gpu-a"});
  EXPECT_EQ(Names("name = \"computeClusters/local\""),
            std::vector<std::string>{"computeClusters/local"});

  // FieldMask: only the capacity changes; the connection is kept.
  v1::UpdateComputeClusterRequest update;
  update.mutable_compute_cluster()->set_name("computeClusters/gpu-a");
  update.mutable_compute_cluster()->set_capacity("nvidia.com/gpu=16");
  update.mutable_compute_cluster()->add_allowed_projects("projects/ignored");
  update.mutable_update_mask()->add_paths("capacity");
  v1::ComputeCluster updated;
  ASSERT_TRUE(stub_->UpdateComputeCluster(Ctx().get(), update, &updated).ok());
  EXPECT_EQ(updated.capacity(), "nvidia.com/gpu=16");
  ASSERT_EQ(updated.allowed_projects_size(), 1);
  EXPECT_EQ(updated.allowed_projects(0), "projects/vision");
  EXPECT_EQ(updated.kubernetes().namespace_(), "ml-jobs");
  EXPECT_NE(updated.etag(), created.etag());

  // A stale etag is refused; the kind cannot change.
  update.mutable_compute_cluster()->set_etag(created.etag());
  grpc::Status stale = stub_->UpdateComputeCluster(Ctx().get(), update, &updated);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  v1::UpdateComputeClusterRequest to_yarn;
  to_yarn.mutable_compute_cluster()->set_name("computeClusters/gpu-a");
  to_yarn.mutable_compute_cluster()->mutable_yarn()->set_rm_url("http://rm:8088");
  to_yarn.mutable_compute_cluster()->mutable_yarn()->set_user("alice");
  grpc::Status kind = stub_->UpdateComputeCluster(Ctx().get(), to_yarn, &updated);
  EXPECT_EQ(kind.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(kind), "compute_cluster.yarn") << kind.error_message();
  EXPECT_TRUE(absl::StrContains(kind.error_message(), "kind cannot change"));

  // The connection of its own kind can.
  v1::UpdateComputeClusterRequest move;
  move.mutable_compute_cluster()->set_name("computeClusters/gpu-a");
  move.mutable_compute_cluster()->mutable_kubernetes()->set_namespace_("other");
  ASSERT_TRUE(stub_->UpdateComputeCluster(Ctx().get(), move, &updated).ok());
  EXPECT_EQ(updated.kubernetes().namespace_(), "other");
  EXPECT_EQ(updated.kubernetes().kubeconfig_credential(), "") << "replaced whole";

  v1::DeleteComputeClusterRequest del;
  del.set_name("computeClusters/gpu-a");
  v1::DeleteComputeClusterResponse deleted;
  ASSERT_TRUE(stub_->DeleteComputeCluster(Ctx().get(), del, &deleted).ok());
  EXPECT_EQ(deleted.compute_cluster().kind(), "kubernetes");
  v1::GetComputeClusterRequest get;
  get.set_name("computeClusters/gpu-a");
  v1::ComputeCluster gone;
  EXPECT_EQ(stub_->GetComputeCluster(Ctx().get(), get, &gone).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ComputeClusterTest, BadInputIsRefusedNamingTheFieldAndNothingIsStored) {
  struct Case {
    std::string id;
    std::function<void(v1::ComputeCluster&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"", [](v1::ComputeCluster&) {}, "compute_cluster_id"},
      {"Bad_Id", [](v1::ComputeCluster&) {}, "compute_cluster_id"},
      {"none", [](v1::ComputeCluster& c) { c.clear_connection(); }, "compute_cluster.connection"},
      {"mine", [](v1::ComputeCluster& c) { c.mutable_local(); }, "compute_cluster.local"},
      {"plain",
       [](v1::ComputeCluster& c) {
         c.mutable_kubernetes()->set_kubeconfig_credential("users/alice/credentials/kube");
       },
       "compute_cluster.kubernetes.kubeconfig_credential"},
      {"ns", [](v1::ComputeCluster& c) { c.mutable_kubernetes()->set_namespace_("ML_Jobs"); },
       "compute_cluster.kubernetes.namespace"},
      {"cap", [](v1::ComputeCluster& c) { c.set_capacity("cpu=lots"); },
       "compute_cluster.capacity"},
      {"proj", [](v1::ComputeCluster& c) { c.add_allowed_projects("vision"); },
       "compute_cluster.allowed_projects[1]"},
      {"twice", [](v1::ComputeCluster& c) { c.add_allowed_projects("projects/vision"); },
       "compute_cluster.allowed_projects[1]"},
      {"yarn", [](v1::ComputeCluster& c) { c.mutable_yarn()->set_user("alice"); },
       "compute_cluster.yarn.rm_url"},
      {"yarn-url",
       [](v1::ComputeCluster& c) {
         c.mutable_yarn()->set_rm_url("rm:8088");
         c.mutable_yarn()->set_user("alice");
       },
       "compute_cluster.yarn.rm_url"},
      {"kind", [](v1::ComputeCluster& c) { c.set_kind("yarn"); }, "compute_cluster.kind"},
  };
  for (const auto& c : cases) {
    v1::ComputeCluster in = Kubernetes();
    c.edit(in);
    v1::ComputeCluster out;
    grpc::Status st = Create(c.id, in, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(ErrorField(st), c.field) << st.error_message();
  }
  EXPECT_EQ(Names(), std::vector<std::string>{"computeClusters/local"});
}

TEST_F(ComputeClusterTest, TheRestFaceListsAndCreatesClusters) {
  ASSERT_TRUE(StartGateway(env_.get()).ok());
  const std::string& gw = env_->gateway_ready.http;
  auto created = HttpCall(gw, "POST", "/v1/computeClusters?computeClusterId=yarn-a",
                          R"({"yarn": {"rmUrl": "http://rm.example:8088", "user": "alice"},
                               "capacity": "cpu=16", "allowedProjects": ["projects/p"]})");
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->status, 200) << created->body;
  auto body = nlohmann::json::parse(created->body);
  EXPECT_EQ(body["name"], "computeClusters/yarn-a");
  EXPECT_EQ(body["kind"], "yarn");

  auto listed = HttpCall(gw, "GET", "/v1/computeClusters");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->status, 200) << listed->body;
  auto clusters = nlohmann::json::parse(listed->body)["computeClusters"];
  ASSERT_EQ(clusters.size(), 2u) << listed->body;
  EXPECT_EQ(clusters[1]["yarn"]["rmUrl"], "http://rm.example:8088");

  auto bad = HttpCall(gw, "POST", "/v1/computeClusters?computeClusterId=k",
                      R"({"capacity": "gpu=-1", "kubernetes": {}})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_TRUE(absl::StrContains(bad->body, "compute_cluster.capacity")) << bad->body;

  auto missing = HttpCall(gw, "GET", "/v1/computeClusters/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404) << missing->body;
}

}  // namespace
}  // namespace submarine::testing
