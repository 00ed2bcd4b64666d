// What deleting a resource means across services, with real processes (permission service,
// environment service, event bus): the grants on a deleted resource die with it (the permission
// service consumes the deletion events every service declares), and every service answers
// ProjectResources.CountProjectResources for the project-deletion check.
#include <gtest/gtest.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/net/address.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "submarine/common/v1/project_resources.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::environment::v1;
namespace pv1 = submarine::permission::v1;
namespace cv1 = submarine::common::v1;

constexpr char kPassword[] = "correct horse battery";

class ResourceLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("lifecycle");
    auto bus = StartEventBus(dir_);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(bus->process);

    // The permission service names the environment service as a peer, so the environment's
    // address is chosen before either starts.
    auto env_port = net::PickFreePort();
    ASSERT_TRUE(env_port.ok()) << env_port.status();
    const std::string env_address = absl::StrCat("127.0.0.1:", *env_port);
    auto perm = StartPermission(
        "", "",
        // (continues the config's final `events:` block)
        absl::StrCat("  subscribe_endpoint: \"", bus->backend, "\"\n",
                     "peers:\n  - name: environment\n    topic_prefix: submarine.environment.v1.\n"
                     "    address: \"",
                     env_address, "\"\n"),
        bus->frontend);
    ASSERT_TRUE(perm.ok()) << perm.status();
    perm_ = std::move(*perm);
    for (const char* u : {"alice", "bob"}) ASSERT_TRUE(perm_->CreateUser(u, kPassword).ok());
    ASSERT_TRUE(perm_->CreateProject("alpha", "alice").ok());

    env_dir_ = MakeTempDir("lifecycle-env");
    std::string yaml = absl::StrReplaceAll(
        EnvironmentConfig(TestPostgres::Get().CreateDatabase("lifecycle_env"), bus->frontend,
                          PermissionYaml(perm_->ready.grpc, bus->backend, 600000),
                          perm_->secret_file),
        {{"grpc_listen: 127.0.0.1:0", absl::StrCat("grpc_listen: ", env_address)}});
    auto env = StartService("submarine-environment", env_dir_, "environment", yaml, &env_ready_);
    ASSERT_TRUE(env.ok()) << env.status();
    env_process_ = std::move(*env);
    env_channel_ = rpc::MakeChannel(env_ready_.grpc);
    env_ = v1::EnvironmentService::NewStub(env_channel_);
  }

  grpc::Status Create(const std::string& who, const std::string& id) {
    v1::CreateEnvironmentRequest req;
    req.set_parent("projects/alpha");
    req.set_environment_id(id);
    req.mutable_environment()->set_image("python:3.11");
    v1::Environment out;
    return env_->CreateEnvironment(perm_->AsUser(who).get(), req, &out);
  }
  grpc::Status Get(const std::string& who, const std::string& id) {
    v1::GetEnvironmentRequest req;
    req.set_name("projects/alpha/environments/" + id);
    v1::Environment out;
    return env_->GetEnvironment(perm_->AsUser(who).get(), req, &out);
  }
  grpc::Status Delete(const std::string& who, const std::string& id) {
    v1::DeleteEnvironmentRequest req;
    req.set_name("projects/alpha/environments/" + id);
    v1::DeleteEnvironmentResponse out;
    return env_->DeleteEnvironment(perm_->AsUser(who).get(), req, &out);
  }
  void GrantRead(const std::string& resource, const std::string& user) {
    pv1::CreateGrantRequest req;
    req.mutable_grant()->set_resource(resource);
    req.mutable_grant()->set_subject("users/" + user);
    req.mutable_grant()->set_permission(pv1::READ);
    pv1::Grant grant;
    grpc::Status st = perm_->access->CreateGrant(perm_->AsUser("alice").get(), req, &grant);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  int GrantsOn(const std::string& resource) {
    pv1::ListGrantsRequest req;
    req.set_resource(resource);
    pv1::ListGrantsResponse out;
    grpc::Status st = perm_->access->ListGrants(perm_->AsAdmin().get(), req, &out);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return out.grants_size();
  }

  std::string dir_, env_dir_;
  ChildProcess bus_;
  std::unique_ptr<PermissionProcess> perm_;
  ChildProcess env_process_;
  ReadyInfo env_ready_;
  std::shared_ptr<grpc::Channel> env_channel_;
  std::unique_ptr<v1::EnvironmentService::Stub> env_;
};

TEST_F(ResourceLifecycleTest, GrantsDieWithTheirResourceSoARecreatedOneStartsClean) {
  const std::string e1 = "projects/alpha/environments/e1";
  const std::string below = e1 + "/versions/v1";
  const std::string sibling = "projects/alpha/environments/e10";  // a prefix, not a child
  ASSERT_TRUE(Create("alice", "e1").ok());
  ASSERT_TRUE(Create("alice", "e10").ok());
  GrantRead(e1, "bob");
  GrantRead(below, "bob");
  GrantRead(sibling, "bob");
  ASSERT_TRUE(Get("bob", "e1").ok());

  ASSERT_TRUE(Delete("alice", "e1").ok());
  // The deletion reaches the permission service as an event: wait for its effect.
  EXPECT_TRUE(WaitFor([&] { return GrantsOn(e1) == 0 && GrantsOn(below) == 0; },
                      std::chrono::seconds(30)));
  EXPECT_EQ(GrantsOn(sibling), 1);

  // A new environment of the same name is not readable by the old grantee (nor cached as such).
  ASSERT_TRUE(Create("alice", "e1").ok());
  EXPECT_EQ(Get("bob", "e1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Get("bob", "e10").ok());
}

TEST_F(ResourceLifecycleTest, EveryServiceCountsWhatAProjectHoldsForServicesOnly) {
  ASSERT_TRUE(Create("alice", "a").ok());
  ASSERT_TRUE(Create("alice", "b").ok());
  auto stub = cv1::ProjectResources::NewStub(env_channel_);
  cv1::CountProjectResourcesRequest req;
  req.set_project("projects/alpha");
  cv1::CountProjectResourcesResponse out;
  grpc::Status st = stub->CountProjectResources(perm_->AsService("permission").get(), req, &out);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(out.counts().at("environments"), 2);

  req.set_project("projects/empty");
  out.Clear();
  ASSERT_TRUE(stub->CountProjectResources(perm_->AsService("permission").get(), req, &out).ok());
  EXPECT_TRUE(out.counts().empty());

  req.set_project("alpha");
  st = stub->CountProjectResources(perm_->AsService("permission").get(), req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("project"), std::string::npos) << st.error_message();

  // Internal: a user (even the project's owner) is refused by the interceptor.
  req.set_project("projects/alpha");
  st = stub->CountProjectResources(perm_->AsUser("alice").get(), req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ResourceLifecycleTest, AProjectIsDeletedOnlyWhenNoServiceHoldsAnythingInIt) {
  auto delete_project = [&](const std::string& name) {
    pv1::DeleteProjectRequest req;
    req.set_name(name);
    pv1::DeleteProjectResponse out;
    return perm_->identity->DeleteProject(perm_->AsUser("alice").get(), req, &out);
  };
  ASSERT_TRUE(Create("alice", "held").ok());
  grpc::Status refused = delete_project("projects/alpha");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("environment"), std::string::npos)
      << refused.error_message();
  // Nothing was deleted: the environment and its project are both still there.
  EXPECT_TRUE(Get("alice", "held").ok());

  // Once the environment is gone, so can the project be.
  ASSERT_TRUE(Delete("alice", "held").ok());
  grpc::Status deleted = delete_project("projects/alpha");
  EXPECT_TRUE(deleted.ok()) << deleted.error_message();

  // Fail closed: while a service cannot be asked, even an empty project stays.
  ASSERT_TRUE(perm_->CreateProject("beta", "alice").ok());
  env_process_.Signal(SIGKILL);
  env_process_.Wait();
  grpc::Status unknown = delete_project("projects/beta");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAVAILABLE) << unknown.error_message();
}

}  // namespace
}  // namespace submarine::testing
