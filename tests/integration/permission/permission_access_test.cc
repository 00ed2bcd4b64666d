// Authorization by the permission service: role bindings, grants, and CheckPermission /
// BatchCheckPermissions / ListAccessible over a matrix of owners, team roles, bindings, grants,
// allUsers, admins and missing projects.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::permission::v1;
constexpr char kPassword[] = "correct horse battery";

class PermissionAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartPermission();
    ASSERT_TRUE(p.ok()) << p.status();
    perm_ = std::move(*p);
    // alice owns p-user; team t: tom OWNER, mai MAINTAINER, mel MEMBER, owns p-team;
    // dave is bound VIEWER on p-user; team t2 (fay) is bound EDITOR on p-user; erin has a READ
    // grant on one environment of p-user; gus a WRITE grant for team t3 (gil) there; p-public
    // binds allUsers VIEWER; zoe has nothing.
    for (const char* u : {"alice", "tom", "mai", "mel", "dave", "fay", "erin", "gil", "zoe"}) {
      ASSERT_TRUE(perm_->CreateUser(u, kPassword).ok()) << u;
    }
    ASSERT_TRUE(perm_->CreateTeam("t", "tom", {"mai", "mel"}).ok());
    ASSERT_TRUE(SetRole("tom", "t", "mai", v1::MAINTAINER).ok());
    ASSERT_TRUE(perm_->CreateTeam("t2", "fay").ok());
    ASSERT_TRUE(perm_->CreateTeam("t3", "gil").ok());
    ASSERT_TRUE(perm_->CreateProject("p-user", "alice").ok());
    ASSERT_TRUE(perm_->CreateProject("p-team", "tom", "teams/t").ok());
    ASSERT_TRUE(perm_->CreateProject("p-public", "alice").ok());
    ASSERT_TRUE(Bind("alice", "p-user", "users/dave", v1::VIEWER).ok());
    ASSERT_TRUE(Bind("alice", "p-user", "teams/t2", v1::EDITOR).ok());
    ASSERT_TRUE(Bind("alice", "p-public", "allUsers", v1::VIEWER).ok());
    ASSERT_TRUE(Grant("alice", "projects/p-user/environments/e1", "users/erin", v1::READ).ok());
    ASSERT_TRUE(Grant("alice", "projects/p-user/environments/e2", "teams/t3", v1::WRITE).ok());
  }

  grpc::Status SetRole(const std::string& as, const std::string& team, const std::string& user,
                       v1::TeamRole role) {
    v1::SetTeamMemberRequest req;
    req.set_team("teams/" + team);
    req.mutable_member()->set_user("users/" + user);
    req.mutable_member()->set_role(role);
    v1::TeamMember out;
    return perm_->identity->SetTeamMember(perm_->AsUser(as).get(), req, &out);
  }

  grpc::Status Bind(const std::string& as, const std::string& project, const std::string& subject,
                    v1::Role role, v1::RoleBinding* out = nullptr) {
    v1::CreateRoleBindingRequest req;
    req.set_parent("projects/" + project);
    req.mutable_role_binding()->set_subject(subject);
    req.mutable_role_binding()->set_role(role);
    v1::RoleBinding b;
    return perm_->access->CreateRoleBinding(perm_->AsUser(as).get(), req, out ? out : &b);
  }

  grpc::Status Grant(const std::string& as, const std::string& resource,
                     const std::string& subject, v1::Permission permission,
                     v1::Grant* out = nullptr) {
    v1::CreateGrantRequest req;
    req.mutable_grant()->set_resource(resource);
    req.mutable_grant()->set_subject(subject);
    req.mutable_grant()->set_permission(permission);
    v1::Grant g;
    return perm_->access->CreateGrant(perm_->AsUser(as).get(), req, out ? out : &g);
  }

  // The highest permission `user` has on `resource` (0 = none), asked by a service.
  int Effective(const std::string& user, const std::string& resource) {
    int best = 0;
    for (v1::Permission p : {v1::READ, v1::WRITE, v1::ADMIN}) {
      v1::CheckPermissionRequest req;
      req.set_subject("users/" + user);
      req.set_resource(resource);
      req.set_permission(p);
      v1::CheckPermissionResponse resp;
      auto st = perm_->access->CheckPermission(perm_->AsService("environment").get(), req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (resp.allowed()) best = p;
    }
    return best;
  }

  std::unique_ptr<PermissionProcess> perm_;
};

TEST_F(PermissionAccessTest, EffectivePermissionMatrix) {
  const std::string e1 = "projects/p-user/environments/e1";
  const std::string e2 = "projects/p-user/environments/e2";
  const std::string e3 = "projects/p-user/environments/e3";
  struct Row {
    std::string user, resource;
    int expected;
  };
  std::vector<Row> rows = {
      // user-owned project: owner ADMIN everywhere in it
      {"alice", "projects/p-user", 3}, {"alice", e1, 3},
      // direct VIEWER binding, team EDITOR binding
      {"dave", "projects/p-user", 1}, {"dave", e3, 1},
      {"fay", "projects/p-user", 2}, {"fay", e1, 2},
      // grants: exactly that resource (and what it contains), for the user or their team
      {"erin", "projects/p-user", 0}, {"erin", e1, 1}, {"erin", e2, 0},
      {"erin", e1 + "/versions/v1", 1},
      {"gil", e2, 2}, {"gil", e1, 0},
      // team-owned project: owner/maintainer ADMIN, member EDITOR, others nothing
      {"tom", "projects/p-team", 3}, {"mai", "projects/p-team", 3},
      {"mel", "projects/p-team", 2}, {"mel", "projects/p-team/notebooks/n", 2},
      {"zoe", "projects/p-team", 0}, {"alice", "projects/p-team", 0},
      // allUsers, and the bootstrap default project
      {"zoe", "projects/p-public", 1}, {"zoe", "projects/default", 1},
      {"alice", "projects/p-public", 3},
      // the platform admin
      {"admin", "projects/p-team", 3}, {"admin", e2, 3},
      // nobody on a missing project, admins included
      {"admin", "projects/missing", 0}, {"alice", "projects/missing/environments/x", 0},
      // unknown users
      {"ghost", "projects/p-public", 0},
  };
  v1::BatchCheckPermissionsRequest batch;
  for (const auto& r : rows) {
    EXPECT_EQ(Effective(r.user, r.resource), r.expected) << r.user << " on " << r.resource;
    for (v1::Permission p : {v1::READ, v1::WRITE, v1::ADMIN}) {
      auto* c = batch.add_checks();
      c->set_subject("users/" + r.user);
      c->set_resource(r.resource);
      c->set_permission(p);
    }
  }
  // The batch gives the same answers in request order.
  v1::BatchCheckPermissionsResponse answers;
  auto st = perm_->access->BatchCheckPermissions(perm_->AsService("environment").get(), batch,
                                                 &answers);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(answers.results_size(), batch.checks_size());
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int p = 0; p < 3; ++p) {
      EXPECT_EQ(answers.results(i * 3 + p).allowed(), rows[i].expected >= p + 1)
          << rows[i].user << " on " << rows[i].resource << " permission " << p + 1;
    }
  }
  // A missing project is reported as such.
  v1::CheckPermissionRequest missing;
  missing.set_subject("users/admin");
  missing.set_resource("projects/missing");
  missing.set_permission(v1::READ);
  v1::CheckPermissionResponse resp;
  ASSERT_TRUE(perm_->access->CheckPermission(perm_->AsService().get(), missing, &resp).ok());
  EXPECT_FALSE(resp.allowed());
  EXPECT_TRUE(resp.project_missing());
}

TEST_F(PermissionAccessTest, MembershipChangesTakeEffectAtOnce) {
  EXPECT_EQ(Effective("zoe", "projects/p-team"), 0);
  ASSERT_TRUE(SetRole("mai", "t", "zoe", v1::MEMBER).ok());
  EXPECT_EQ(Effective("zoe", "projects/p-team"), 2);
  v1::UpdateUserRequest disable;
  disable.mutable_user()->set_name("users/zoe");
  disable.mutable_user()->set_disabled(true);
  disable.mutable_update_mask()->add_paths("disabled");
  v1::User out;
  ASSERT_TRUE(perm_->identity->UpdateUser(perm_->AsAdmin().get(), disable, &out).ok());
  EXPECT_EQ(Effective("zoe", "projects/p-team"), 0);
  // A disabled user's own calls are refused.
  v1::CheckPermissionRequest self;
  self.set_resource("projects/p-team");
  self.set_permission(v1::READ);
  v1::CheckPermissionResponse resp;
  EXPECT_EQ(perm_->access->CheckPermission(perm_->AsUser("zoe").get(), self, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PermissionAccessTest, OnlyServicesAndAdminsAskAboutOthers) {
  v1::CheckPermissionRequest req;
  req.set_resource("projects/p-user");
  req.set_permission(v1::READ);
  v1::CheckPermissionResponse resp;
  ASSERT_TRUE(perm_->access->CheckPermission(perm_->AsUser("dave").get(), req, &resp).ok());
  EXPECT_TRUE(resp.allowed());
  req.set_subject("users/alice");
  auto st = perm_->access->CheckPermission(perm_->AsUser("dave").get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(perm_->access->CheckPermission(perm_->AsAdmin().get(), req, &resp).ok());
  EXPECT_TRUE(perm_->access->CheckPermission(perm_->AsService("x", "dave").get(), req, &resp).ok());
  // Malformed questions name their field.
  req.set_subject("");
  req.set_resource("projects/p-user/environments");
  st = perm_->access->CheckPermission(perm_->AsUser("dave").get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "resource");
  req.set_resource("projects/p-user/environments/../../x");
  EXPECT_EQ(ErrorField(perm_->access->CheckPermission(perm_->AsUser("dave").get(), req, &resp)),
            "resource");
  req.set_resource("projects/p-user");
  req.set_permission(v1::PERMISSION_UNSPECIFIED);
  EXPECT_EQ(ErrorField(perm_->access->CheckPermission(perm_->AsUser("dave").get(), req, &resp)),
            "permission");
  v1::BatchCheckPermissionsRequest batch;
  for (int i = 0; i < 1001; ++i) {
    auto* c = batch.add_checks();
    c->set_resource("projects/p-user");
    c->set_permission(v1::READ);
  }
  v1::BatchCheckPermissionsResponse answers;
  st = perm_->access->BatchCheckPermissions(perm_->AsUser("dave").get(), batch, &answers);
  EXPECT_EQ(ErrorField(st), "checks");
  batch.mutable_checks()->DeleteSubrange(1000, 1);
  batch.mutable_checks(7)->set_resource("nope");
  st = perm_->access->BatchCheckPermissions(perm_->AsUser("dave").get(), batch, &answers);
  EXPECT_EQ(ErrorField(st), "checks[7].resource");
}

TEST_F(PermissionAccessTest, ListAccessibleNamesGrantedResourcesOrAll) {
  auto list = [&](const std::string& user, const std::string& project,
                  v1::Permission p = v1::READ) {
    v1::ListAccessibleRequest req;
    req.set_subject("users/" + user);
    req.set_parent("projects/" + project);
    req.set_collection("environments");
    req.set_permission(p);
    v1::ListAccessibleResponse resp;
    auto st = perm_->access->ListAccessible(perm_->AsService().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  EXPECT_TRUE(list("alice", "p-user").all());
  EXPECT_TRUE(list("dave", "p-user").all());
  EXPECT_FALSE(list("dave", "p-user", v1::WRITE).all());
  auto erin = list("erin", "p-user");
  EXPECT_FALSE(erin.all());
  EXPECT_EQ(std::vector<std::string>(erin.resources().begin(), erin.resources().end()),
            std::vector<std::string>{"projects/p-user/environments/e1"});
  auto gil = list("gil", "p-user", v1::WRITE);
  EXPECT_EQ(std::vector<std::string>(gil.resources().begin(), gil.resources().end()),
            std::vector<std::string>{"projects/p-user/environments/e2"});
  EXPECT_EQ(list("erin", "p-user", v1::WRITE).resources_size(), 0);
  auto zoe = list("zoe", "p-team");
  EXPECT_FALSE(zoe.all());
  EXPECT_EQ(zoe.resources_size(), 0);
}

TEST_F(PermissionAccessTest, BindingsAndGrantsNeedAdminOnTheirTarget) {
  // dave only reads p-user: he binds and grants nothing; strangers get the same answer for a
  // missing project.
  EXPECT_EQ(Bind("dave", "p-user", "users/zoe", v1::VIEWER).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Bind("dave", "missing", "users/zoe", v1::VIEWER).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Bind("admin", "missing", "users/zoe", v1::VIEWER).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Grant("dave", "projects/p-user/environments/e1", "users/zoe", v1::READ).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // erin's READ grant does not let her share it on.
  EXPECT_EQ(Grant("erin", "projects/p-user/environments/e1", "users/zoe", v1::READ).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Bad subjects, roles and resources name their field.
  auto st = Bind("alice", "p-user", "users/ghost", v1::VIEWER);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorField(st), "role_binding.subject");
  EXPECT_EQ(ErrorField(Bind("alice", "p-user", "groups/x", v1::VIEWER)), "role_binding.subject");
  EXPECT_EQ(ErrorField(Bind("alice", "p-user", "users/zoe", v1::ROLE_UNSPECIFIED)),
            "role_binding.role");
  EXPECT_EQ(ErrorField(Grant("alice", "projects/p-user", "users/zoe", v1::READ)),
            "grant.resource");
  EXPECT_EQ(ErrorField(Grant("alice", "projects/p-user/environments/e1", "teams/ghost",
                             v1::READ)),
            "grant.subject");

  // Re-binding a subject replaces its role: one binding per subject.
  v1::RoleBinding first, second;
  ASSERT_TRUE(Bind("alice", "p-user", "users/zoe", v1::VIEWER, &first).ok());
  ASSERT_TRUE(Bind("alice", "p-user", "users/zoe", v1::EDITOR, &second).ok());
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(Effective("zoe", "projects/p-user"), 2);
  EXPECT_TRUE(perm_->WaitForEvent("submarine.permission.v1.AccessChanged", "projects/p-user"));
  v1::DeleteRoleBindingRequest del;
  del.set_name(second.name());
  v1::DeleteRoleBindingResponse deleted;
  EXPECT_EQ(perm_->access->DeleteRoleBinding(perm_->AsUser("zoe").get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->access->DeleteRoleBinding(perm_->AsUser("alice").get(), del, &deleted).ok());
  EXPECT_EQ(Effective("zoe", "projects/p-user"), 0);

  // Grants: listed for resource admins, deleted by them; a stranger cannot even learn whether a
  // grant exists.
  v1::Grant g;
  ASSERT_TRUE(Grant("alice", "projects/p-user/environments/e9", "users/zoe", v1::ADMIN, &g).ok());
  EXPECT_EQ(g.creator(), "users/alice");
  EXPECT_EQ(Effective("zoe", "projects/p-user/environments/e9"), 3);
  // With ADMIN on the resource, zoe can share it further.
  EXPECT_TRUE(Grant("zoe", "projects/p-user/environments/e9", "users/mel", v1::READ).ok());
  v1::ListGrantsRequest lg;
  lg.set_resource("projects/p-user/environments/e9");
  v1::ListGrantsResponse grants;
  ASSERT_TRUE(perm_->access->ListGrants(perm_->AsUser("alice").get(), lg, &grants).ok());
  EXPECT_EQ(grants.grants_size(), 2);
  EXPECT_EQ(perm_->access->ListGrants(perm_->AsUser("mel").get(), lg, &grants).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::DeleteGrantRequest dg;
  dg.set_name(g.name());
  v1::DeleteGrantResponse dgr;
  EXPECT_EQ(perm_->access->DeleteGrant(perm_->AsUser("mel").get(), dg, &dgr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->access->DeleteGrant(perm_->AsUser("alice").get(), dg, &dgr).ok());
  EXPECT_EQ(Effective("zoe", "projects/p-user/environments/e9"), 0);
  EXPECT_EQ(perm_->access->DeleteGrant(perm_->AsUser("mel").get(), dg, &dgr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(perm_->access->DeleteGrant(perm_->AsAdmin().get(), dg, &dgr).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Deleting the project takes its bindings and grants with it.
  v1::DeleteProjectRequest dp;
  dp.set_name("projects/p-user");
  v1::DeleteProjectResponse dpr;
  EXPECT_EQ(perm_->identity->DeleteProject(perm_->AsUser("fay").get(), dp, &dpr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->identity->DeleteProject(perm_->AsUser("alice").get(), dp, &dpr).ok());
  ASSERT_TRUE(perm_->CreateProject("p-user", "zoe").ok());
  EXPECT_EQ(Effective("dave", "projects/p-user"), 0);
  EXPECT_EQ(Effective("erin", "projects/p-user/environments/e1"), 0);
}

}  // namespace
}  // namespace submarine::testing
