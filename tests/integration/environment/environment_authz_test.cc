// The environment service enforcing authorization against a real permission service and a real
// event bus, called over gRPC with principals signed with the shared internal secret (what the
// gateway sends after verifying a token).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "submarine/environment/v1/submarine_v1.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::environment::v1;
namespace pv1 = submarine::permission::v1;
using submarine::common::v1::Principal;

constexpr char kPassword[] = "correct horse battery";

class EnvironmentAuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("env-authz");
    auto bus = StartEventBus(dir_);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(bus->process);
    const std::string frontend = bus->frontend;
    const std::string backend = bus->backend;

    auto perm = StartPermission("", "", "", frontend);
    ASSERT_TRUE(perm.ok()) << perm.status();
    perm_ = std::move(*perm);
    for (const char* u : {"alice", "bob", "carol"}) {
      auto user = perm_->CreateUser(u, kPassword);
      ASSERT_TRUE(user.ok()) << user.status();
    }
    ASSERT_TRUE(perm_->CreateProject("alpha", "alice").ok());
    ASSERT_TRUE(perm_->CreateProject("beta", "bob").ok());

    // A long TTL: whatever changes within a test is seen through events, not expiry.
    auto env =
        StartEnvironment("", "", "", frontend, PermissionYaml(perm_->ready.grpc, backend, 600000),
                         perm_->secret_file);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
  }

  std::unique_ptr<grpc::ClientContext> As(const std::string& user) {
    if (user == "admin") {
      Principal p;
      p.set_kind(Principal::USER);
      p.set_user("admin");
      p.set_admin(true);
      return perm_->WithPrincipal(p);
    }
    return perm_->AsUser(user);
  }

  grpc::Status Create(const std::string& who, const std::string& project, const std::string& id,
                      v1::Environment* out = nullptr) {
    v1::CreateEnvironmentRequest req;
    req.set_parent("projects/" + project);
    req.set_environment_id(id);
    req.mutable_environment()->set_image("python:3.11");
    v1::Environment ignored;
    return env_->stub->CreateEnvironment(As(who).get(), req, out ? out : &ignored);
  }
  grpc::Status Get(const std::string& who, const std::string& name) {
    v1::GetEnvironmentRequest req;
    req.set_name(name);
    v1::Environment out;
    return env_->stub->GetEnvironment(As(who).get(), req, &out);
  }
  grpc::Status Update(const std::string& who, const std::string& name) {
    v1::UpdateEnvironmentRequest req;
    req.mutable_environment()->set_name(name);
    req.mutable_environment()->set_description("changed by " + who);
    req.mutable_update_mask()->add_paths("description");
    v1::Environment out;
    return env_->stub->UpdateEnvironment(As(who).get(), req, &out);
  }
  grpc::Status Delete(const std::string& who, const std::string& name) {
    v1::DeleteEnvironmentRequest req;
    req.set_name(name);
    v1::DeleteEnvironmentResponse out;
    return env_->stub->DeleteEnvironment(As(who).get(), req, &out);
  }
  // Names listed for `who` in `project` (all pages, page size 2 to exercise paging).
  absl::StatusOr<std::set<std::string>> List(const std::string& who, const std::string& project) {
    std::set<std::string> names;
    v1::ListEnvironmentsRequest req;
    req.set_parent("projects/" + project);
    req.set_page_size(2);
    do {
      v1::ListEnvironmentsResponse resp;
      grpc::Status st = env_->stub->ListEnvironments(As(who).get(), req, &resp);
      if (!st.ok()) return FromGrpcStatus(st);
      for (const auto& e : resp.environments()) names.insert(e.name());
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return names;
  }
  absl::StatusOr<std::string> Grant(const std::string& granter, const std::string& resource,
                                    const std::string& subject, pv1::Permission permission) {
    pv1::CreateGrantRequest req;
    req.mutable_grant()->set_resource(resource);
    req.mutable_grant()->set_subject(subject);
    req.mutable_grant()->set_permission(permission);
    pv1::Grant grant;
    grpc::Status st = perm_->access->CreateGrant(perm_->AsUser(granter).get(), req, &grant);
    if (!st.ok()) return FromGrpcStatus(st);
    return grant.name();
  }

  std::string dir_;
  ChildProcess bus_;
  std::unique_ptr<PermissionProcess> perm_;
  std::unique_ptr<EnvironmentProcess> env_;
};

constexpr char kA1[] = "projects/alpha/environments/a1";

TEST_F(EnvironmentAuthzTest, OwnersDoEverythingAndStrangersAreDeniedWhetherOrNotItExists) {
  ASSERT_TRUE(Create("alice", "alpha", "a1").ok());
  ASSERT_TRUE(Create("alice", "alpha", "a2").ok());
  EXPECT_TRUE(Get("alice", kA1).ok());
  EXPECT_TRUE(Update("alice", kA1).ok());
  auto listed = List("alice", "alpha");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, (std::set<std::string>{kA1, "projects/alpha/environments/a2"}));

  // bob: the same answer for an existing and a missing environment, on every method.
  for (const std::string& name :
       {std::string(kA1), std::string("projects/alpha/environments/zz")}) {
    for (const auto& st : {Get("bob", name), Update("bob", name), Delete("bob", name)}) {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << name;
      EXPECT_EQ(ErrorReason(st), "PERMISSION_DENIED") << name;
      EXPECT_NE(st.error_message().find(name), std::string::npos) << st.error_message();
    }
  }
  EXPECT_EQ(Create("bob", "alpha", "intruder").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto bob_sees = List("bob", "alpha");
  ASSERT_TRUE(bob_sees.ok()) << bob_sees.status();
  EXPECT_TRUE(bob_sees->empty());
  // Nothing bob tried changed anything.
  EXPECT_TRUE(Get("alice", kA1).ok());
  EXPECT_EQ(Get("alice", "projects/alpha/environments/intruder").error_code(),
            grpc::StatusCode::NOT_FOUND);

  ASSERT_TRUE(Delete("alice", kA1).ok());
  EXPECT_EQ(Get("alice", kA1).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(EnvironmentAuthzTest, AMissingProjectIsRevealedToAdminsOnly) {
  grpc::Status bob = Create("bob", "nowhere", "x");
  EXPECT_EQ(bob.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get("bob", "projects/nowhere/environments/x").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status admin = Create("admin", "nowhere", "x");
  EXPECT_EQ(admin.error_code(), grpc::StatusCode::NOT_FOUND) << admin.error_message();
  EXPECT_EQ(ErrorReason(admin), "PROJECT_NOT_FOUND");
  // Admins may do anything in projects that exist.
  EXPECT_TRUE(Create("admin", "alpha", "by-admin").ok());
  EXPECT_TRUE(Delete("admin", "projects/alpha/environments/by-admin").ok());
}

TEST_F(EnvironmentAuthzTest, AnonymousAndForgedCallersAreUnauthenticated) {
  v1::GetEnvironmentRequest req;
  req.set_name("projects/default/environments/notebook-env");
  v1::Environment out;
  auto anonymous = env_->stub->GetEnvironment(Ctx().get(), req, &out);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A principal header signed with another secret: refused, even claiming to be an admin.
  auth::PrincipalCodec forger(std::string(32, 'f'));
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user("admin");
  p.set_admin(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  forger.Attach(&ctx, p, "forged-1", "/submarine.environment.v1.EnvironmentService/GetEnvironment");
  auto forged = env_->stub->GetEnvironment(&ctx, req, &out);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ErrorReason(forged), "PRINCIPAL_MAC_INVALID");
}

TEST_F(EnvironmentAuthzTest, AGrantSharesOneEnvironmentUntilItIsDeleted) {
  ASSERT_TRUE(Create("alice", "alpha", "a1").ok());
  ASSERT_TRUE(Create("alice", "alpha", "private").ok());
  ASSERT_EQ(Get("bob", kA1).error_code(), grpc::StatusCode::PERMISSION_DENIED);  // now cached

  auto grant = Grant("alice", kA1, "users/bob", pv1::READ);
  ASSERT_TRUE(grant.ok()) << grant.status();
  // The cached denial is dropped by the AccessChanged event.
  ASSERT_TRUE(WaitFor([&] { return Get("bob", kA1).ok(); }));
  auto listed = List("bob", "alpha");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, std::set<std::string>{kA1});
  EXPECT_EQ(Update("bob", kA1).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "READ does not allow writing";
  EXPECT_EQ(Get("bob", "projects/alpha/environments/private").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  pv1::DeleteGrantRequest del;
  del.set_name(*grant);
  pv1::DeleteGrantResponse deleted;
  ASSERT_TRUE(perm_->access->DeleteGrant(perm_->AsUser("alice").get(), del, &deleted).ok());
  ASSERT_TRUE(
      WaitFor([&] { return Get("bob", kA1).error_code() == grpc::StatusCode::PERMISSION_DENIED; }));
  // Get and List are answered from caches that the same AccessChanged event refreshes, each on
  // its own: the List may see the revocation a moment after the Get.
  absl::StatusOr<std::set<std::string>> after;
  EXPECT_TRUE(WaitFor([&] {
    after = List("bob", "alpha");
    return after.ok() && after->empty();
  }));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->empty());
}

TEST_F(EnvironmentAuthzTest, EventsRecordTheCallerAsPrincipal) {
  v1::Environment created;
  ASSERT_TRUE(Create("alice", "alpha", "audited", &created).ok());
  ASSERT_TRUE(Update("alice", created.name()).ok());
  submarine::common::v1::ListEventsRequest req;
  req.set_publisher("environment");
  submarine::common::v1::ListEventsResponse resp;
  // The seeded built-ins and the local compute cluster come first; then alice's two.
  int mine = 0;
  ASSERT_TRUE(WaitFor([&] {
    resp.Clear();
    if (!env_->events->ListEvents(perm_->AsService().get(), req, &resp).ok()) return false;
    mine = 0;
    for (const auto& e : resp.events()) mine += e.header().resource() == created.name();
    return mine >= 2;
  }));
  for (const auto& e : resp.events()) {
    if (e.header().resource() != created.name()) continue;
    EXPECT_EQ(e.header().principal(), "users/alice") << e.topic();
  }
  EXPECT_EQ(mine, 2);
}

TEST_F(EnvironmentAuthzTest, TheSubmarineFaceIsAuthorizedOnTheDefaultProject) {
  v1::SubmarineCreateEnvironmentRequest create;
  create.mutable_spec()->set_name("v1-env");
  create.mutable_spec()->set_docker_image("python:3.11");
  auto api = v1::SubmarineEnvironmentApi::NewStub(env_->channel);
  submarine::common::v1::SubmarineV1Response resp;
  // "default" belongs to admin and every user is its VIEWER.
  EXPECT_EQ(api->CreateEnvironment(As("bob").get(), create, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(api->CreateEnvironment(As("admin").get(), create, &resp).ok());
  v1::SubmarineEnvironmentNameRequest name;
  name.set_name("v1-env");
  EXPECT_TRUE(api->GetEnvironment(As("bob").get(), name, &resp).ok());
  EXPECT_EQ(api->DeleteEnvironment(As("bob").get(), name, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::SubmarineListEnvironmentsRequest list;
  ASSERT_TRUE(api->ListEnvironments(As("bob").get(), list, &resp).ok());
  std::set<std::string> names;
  for (const auto& v : resp.result().list_value().values()) {
    names.insert(v.struct_value()
                     .fields()
                     .at("environmentSpec")
                     .struct_value()
                     .fields()
                     .at("name")
                     .string_value());
  }
  EXPECT_EQ(names, (std::set<std::string>{"notebook-env", "notebook-gpu-env", "v1-env"}));
}

TEST_F(EnvironmentAuthzTest, WithoutThePermissionServiceCallsAreRefused) {
  ASSERT_TRUE(Create("alice", "alpha", "a1").ok());
  perm_->process.Kill();
  // An answer not in the cache cannot be had: fail closed.
  grpc::Status st = Get("carol", kA1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "PERMISSION_SERVICE_UNAVAILABLE");
  EXPECT_EQ(List("carol", "alpha").status().code(), absl::StatusCode::kUnavailable);
}

TEST(EnvironmentAuthzConfig, RefusesToStartWithoutAPermissionServiceOrTheInsecureFlag) {
  auto none = StartEnvironment("", "", "", "", "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(Message(none.status()).find("permission.address"), std::string::npos) << none.status();
  auto no_secret = StartEnvironment("", "", "", "", PermissionYaml("127.0.0.1:1", ""));
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(Message(no_secret.status()).find("server.gateway_secret_file"), std::string::npos)
      << no_secret.status();
}

}  // namespace
}  // namespace submarine::testing
