// Users, teams and projects of the permission service, as a real process on a real PostgreSQL:
// bootstrap, CRUD, and every refusal (naming its field, changing nothing).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::permission::v1;
constexpr char kPassword[] = "correct horse battery";

class PermissionIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartPermission();
    ASSERT_TRUE(p.ok()) << p.status();
    perm_ = std::move(*p);
  }

  // Every user, for "nothing changed" assertions.
  std::string UsersSnapshot() {
    v1::ListUsersRequest req;
    req.set_page_size(1000);
    v1::ListUsersResponse resp;
    EXPECT_TRUE(perm_->identity->ListUsers(perm_->AsAdmin().get(), req, &resp).ok());
    return resp.SerializeAsString();
  }

  std::unique_ptr<PermissionProcess> perm_;
};

TEST_F(PermissionIdentityTest, BootstrapWritesAPrivatePasswordFileOnce) {
  struct stat st {};
  ASSERT_EQ(stat(perm_->admin_password_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string password = perm_->AdminPassword();
  ASSERT_GE(password.size(), 20u);
  auto login = perm_->Login("admin", password);
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_TRUE(login->user().admin());

  // The default project exists, owned by admin, readable by every user.
  v1::Project project;
  v1::GetProjectRequest get;
  get.set_name("projects/default");
  ASSERT_TRUE(perm_->identity->GetProject(perm_->AsAdmin().get(), get, &project).ok());
  EXPECT_EQ(project.owner(), "users/admin");
  ASSERT_TRUE(perm_->CreateUser("alice", kPassword).ok());
  EXPECT_TRUE(perm_->identity->GetProject(perm_->AsUser("alice").get(), get, &project).ok());
  v1::ListRoleBindingsRequest list;
  list.set_parent("projects/default");
  v1::ListRoleBindingsResponse bindings;
  ASSERT_TRUE(perm_->access->ListRoleBindings(perm_->AsAdmin().get(), list, &bindings).ok());
  ASSERT_EQ(bindings.role_bindings_size(), 1);
  EXPECT_EQ(bindings.role_bindings(0).subject(), "allUsers");
  EXPECT_EQ(bindings.role_bindings(0).role(), v1::VIEWER);

  // A second admin; "admin" is deleted; a restart on the same data re-creates nothing and keeps
  // the password file as it was.
  ASSERT_TRUE(perm_->CreateUser("root2", kPassword, /*admin=*/true).ok());
  v1::UpdateProjectRequest give;
  give.mutable_project()->set_name("projects/default");
  give.mutable_project()->set_owner("users/root2");
  give.mutable_update_mask()->add_paths("owner");
  ASSERT_TRUE(perm_->identity->UpdateProject(perm_->AsAdmin().get(), give, &project).ok());
  v1::DeleteUserRequest del;
  del.set_name("users/admin");
  v1::DeleteUserResponse deleted;
  auto removed = perm_->identity->DeleteUser(perm_->AsUser("root2").get(), del, &deleted);
  ASSERT_TRUE(removed.ok()) << removed.error_message();
  perm_->process.Signal(SIGTERM);
  ASSERT_EQ(perm_->process.Wait(), 0);
  auto again = StartPermission(perm_->dbname, perm_->dir);
  ASSERT_TRUE(again.ok()) << again.status();
  perm_ = std::move(*again);
  EXPECT_EQ(perm_->AdminPassword(), password);
  v1::GetUserRequest get_admin;
  get_admin.set_name("users/admin");
  v1::User user;
  EXPECT_EQ(perm_->identity->GetUser(perm_->AsUser("root2").get(), get_admin, &user).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(perm_->Login("admin", password).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(PermissionIdentityTest, RefusesToStartWithoutTheInternalSecret) {
  PermissionProcess bare;
  bare.dir = perm_->dir;
  bare.dbname = perm_->dbname;
  bare.secret_file = "";
  std::string yaml = PermissionConfig(bare);
  ReadyInfo ready;
  auto started = StartService("submarine-permission", MakeTempDir("perm-nosecret"), "permission",
                              yaml, &ready);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string(started.status().message()).find("gateway_secret_file"), std::string::npos)
      << started.status();
}

TEST_F(PermissionIdentityTest, UserCrudAndEveryRefusal) {
  auto alice = perm_->CreateUser("alice", kPassword);
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->name(), "users/alice");
  EXPECT_FALSE(alice->admin());
  EXPECT_FALSE(alice->etag().empty());
  ASSERT_TRUE(perm_->CreateUser("bob", kPassword).ok());
  std::string before = UsersSnapshot();

  struct Case {
    const char* label;
    std::function<void(v1::CreateUserRequest&)> edit;
    grpc::StatusCode code;
    const char* field;
    bool as_admin = true;
  };
  std::vector<Case> cases = {
      {"not admin", [](auto&) {}, grpc::StatusCode::PERMISSION_DENIED, "", false},
      {"no id", [](auto& r) { r.clear_user_id(); }, grpc::StatusCode::INVALID_ARGUMENT, "user_id"},
      {"bad id", [](auto& r) { r.set_user_id("Carol"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "user_id"},
      {"injected id", [](auto& r) { r.set_user_id("c'; DROP TABLE users; --"); },
       grpc::StatusCode::INVALID_ARGUMENT, "user_id"},
      {"short password", [](auto& r) { r.set_password("short"); },
       grpc::StatusCode::INVALID_ARGUMENT, "password"},
      {"bad email", [](auto& r) { r.mutable_user()->set_email("no-at-sign"); },
       grpc::StatusCode::INVALID_ARGUMENT, "user.email"},
      {"control chars", [](auto& r) { r.mutable_user()->set_display_name("a\x01" "b"); },
       grpc::StatusCode::INVALID_ARGUMENT, "user.display_name"},
      {"long name", [](auto& r) { r.mutable_user()->set_display_name(std::string(300, 'x')); },
       grpc::StatusCode::INVALID_ARGUMENT, "user.display_name"},
      {"other name", [](auto& r) { r.mutable_user()->set_name("users/mallory"); },
       grpc::StatusCode::INVALID_ARGUMENT, "user.name"},
      {"exists", [](auto& r) { r.set_user_id("bob"); }, grpc::StatusCode::ALREADY_EXISTS, ""},
  };
  for (const auto& c : cases) {
    v1::CreateUserRequest req;
    req.set_user_id("carol");
    req.set_password(kPassword);
    c.edit(req);
    v1::User out;
    auto ctx = c.as_admin ? perm_->AsAdmin() : perm_->AsUser("alice");
    auto st = perm_->identity->CreateUser(ctx.get(), req, &out);
    EXPECT_EQ(st.error_code(), c.code) << c.label << ": " << st.error_message();
    EXPECT_EQ(ErrorField(st), c.field) << c.label;
  }
  EXPECT_EQ(UsersSnapshot(), before);

  // Self-service: display name yes, admin flag no; other users no.
  v1::UpdateUserRequest upd;
  upd.mutable_user()->set_name("users/alice");
  upd.mutable_user()->set_display_name("Alice A.");
  upd.mutable_update_mask()->add_paths("display_name");
  v1::User updated;
  ASSERT_TRUE(perm_->identity->UpdateUser(perm_->AsUser("alice").get(), upd, &updated).ok());
  EXPECT_EQ(updated.display_name(), "Alice A.");
  EXPECT_NE(updated.etag(), alice->etag());
  upd.mutable_user()->set_admin(true);
  upd.mutable_update_mask()->add_paths("admin");
  EXPECT_EQ(perm_->identity->UpdateUser(perm_->AsUser("alice").get(), upd, &updated).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::UpdateUserRequest other;
  other.mutable_user()->set_name("users/bob");
  other.mutable_user()->set_display_name("hijacked");
  EXPECT_EQ(perm_->identity->UpdateUser(perm_->AsUser("alice").get(), other, &updated).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A stale etag is refused.
  other.mutable_user()->set_etag("0000");
  auto st = perm_->identity->UpdateUser(perm_->AsAdmin().get(), other, &updated);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  v1::GetUserRequest get;
  get.set_name("users/bob");
  v1::User bob;
  ASSERT_TRUE(perm_->identity->GetUser(perm_->AsAdmin().get(), get, &bob).ok());
  EXPECT_EQ(bob.display_name(), "bob");

  // Users who share no team cannot read each other; the admin can; everybody lists usernames.
  EXPECT_EQ(perm_->identity->GetUser(perm_->AsUser("alice").get(), get, &bob).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->CreateTeam("vision", "alice", {"bob"}).ok());
  EXPECT_TRUE(perm_->identity->GetUser(perm_->AsUser("alice").get(), get, &bob).ok());
  EXPECT_EQ(bob.teams_size(), 1);
  v1::ListUsersRequest list;
  list.set_filter("name = \"users/a*\"");
  v1::ListUsersResponse users;
  ASSERT_TRUE(perm_->identity->ListUsers(perm_->AsUser("bob").get(), list, &users).ok());
  ASSERT_EQ(users.users_size(), 2);  // admin, alice
  EXPECT_EQ(users.users(0).name(), "users/admin");
  EXPECT_EQ(users.users(1).name(), "users/alice");
  // The shared filter language: OR, NOT, IN, booleans.
  auto usernames = [&](const std::string& filter) {
    v1::ListUsersRequest req;
    req.set_filter(filter);
    v1::ListUsersResponse resp;
    grpc::Status st = perm_->identity->ListUsers(perm_->AsUser("bob").get(), req, &resp);
    std::vector<std::string> out;
    if (!st.ok()) out.push_back(absl::StrCat(st.error_code(), ": ", st.error_message()));
    for (const auto& u : resp.users()) out.push_back(u.name());
    return out;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(usernames("name = a* AND NOT admin = true"), Names{"users/alice"});
  EXPECT_EQ(usernames("admin = TRUE OR name IN (\"users/bob\", carol)"),
            (Names{"users/admin", "users/bob"}));
  EXPECT_EQ(usernames("disabled != false"), Names{});
  EXPECT_EQ(usernames("admin = maybe"),
            Names{"3: filter: \"admin\" takes true or false, not \"maybe\" at position 9"});

  // Pagination walks every user exactly once.
  v1::ListUsersRequest page;
  page.set_page_size(1);
  std::vector<std::string> seen;
  do {
    v1::ListUsersResponse resp;
    ASSERT_TRUE(perm_->identity->ListUsers(perm_->AsUser("bob").get(), page, &resp).ok());
    for (const auto& u : resp.users()) seen.push_back(u.name());
    page.set_page_token(resp.next_page_token());
  } while (!page.page_token().empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"users/admin", "users/alice", "users/bob"}));

  // Deleting: admins only; a user who owns a project must hand it over first.
  ASSERT_TRUE(perm_->CreateProject("alice-proj", "alice").ok());
  v1::DeleteUserRequest del;
  del.set_name("users/alice");
  v1::DeleteUserResponse deleted;
  EXPECT_EQ(perm_->identity->DeleteUser(perm_->AsUser("bob").get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  st = perm_->identity->DeleteUser(perm_->AsAdmin().get(), del, &deleted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(st), "OWNS_PROJECTS");
  v1::DeleteProjectRequest del_project;
  del_project.set_name("projects/alice-proj");
  v1::DeleteProjectResponse deleted_project;
  ASSERT_TRUE(
      perm_->identity->DeleteProject(perm_->AsUser("alice").get(), del_project, &deleted_project)
          .ok());
  ASSERT_TRUE(perm_->identity->DeleteUser(perm_->AsAdmin().get(), del, &deleted).ok());
  EXPECT_TRUE(perm_->WaitForEvent("submarine.permission.v1.UserChanged", "users/alice"));
  // Alice's principal is no longer accepted.
  v1::User me;
  auto gone = perm_->identity->GetCurrentUser(perm_->AsUser("alice").get(),
                                              v1::GetCurrentUserRequest(), &me);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PermissionIdentityTest, TheLastAdministratorStays) {
  v1::UpdateUserRequest upd;
  upd.mutable_user()->set_name("users/admin");
  upd.mutable_user()->set_admin(false);
  upd.mutable_update_mask()->add_paths("admin");
  v1::User out;
  auto st = perm_->identity->UpdateUser(perm_->AsAdmin().get(), upd, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(st), "LAST_ADMIN");
  v1::DeleteUserRequest del;
  del.set_name("users/admin");
  v1::DeleteUserResponse deleted;
  EXPECT_EQ(perm_->identity->DeleteUser(perm_->AsAdmin().get(), del, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(PermissionIdentityTest, TeamRolesDecideWhoManagesMembers) {
  for (const char* u : {"olga", "mark", "mia", "nina"}) ASSERT_TRUE(perm_->CreateUser(u, kPassword).ok());
  ASSERT_TRUE(perm_->CreateTeam("ml", "olga").ok());
  auto set = [&](const std::string& as, const std::string& user, v1::TeamRole role) {
    v1::SetTeamMemberRequest req;
    req.set_team("teams/ml");
    req.mutable_member()->set_user("users/" + user);
    req.mutable_member()->set_role(role);
    v1::TeamMember out;
    return perm_->identity->SetTeamMember(perm_->AsUser(as).get(), req, &out);
  };
  auto remove = [&](const std::string& as, const std::string& user) {
    v1::RemoveTeamMemberRequest req;
    req.set_team("teams/ml");
    req.set_user("users/" + user);
    v1::RemoveTeamMemberResponse out;
    return perm_->identity->RemoveTeamMember(perm_->AsUser(as).get(), req, &out);
  };
  // A stranger cannot add anyone, whether or not the team exists.
  EXPECT_EQ(set("nina", "nina", v1::MEMBER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(set("olga", "mark", v1::MAINTAINER).ok());
  // A maintainer adds members, but cannot hand out or change roles.
  EXPECT_TRUE(set("mark", "mia", v1::MEMBER).ok());
  EXPECT_EQ(set("mark", "nina", v1::MAINTAINER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(set("mark", "mia", v1::OWNER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A member manages nobody; unknown users and malformed names are refused.
  EXPECT_EQ(set("mia", "nina", v1::MEMBER).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(set("olga", "ghost", v1::MEMBER).error_code(), grpc::StatusCode::NOT_FOUND);
  auto bad = set("olga", "../etc", v1::MEMBER);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(bad), "member.user");
  // The last owner cannot step down or leave.
  auto last = set("olga", "olga", v1::MEMBER);
  EXPECT_EQ(last.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(last), "LAST_OWNER");
  EXPECT_EQ(remove("olga", "olga").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Maintainers remove members but not other maintainers; anyone may leave.
  EXPECT_EQ(remove("mark", "olga").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(remove("mia", "mia").ok());

  v1::ListTeamMembersRequest list;
  list.set_team("teams/ml");
  v1::ListTeamMembersResponse members;
  ASSERT_TRUE(perm_->identity->ListTeamMembers(perm_->AsUser("nina").get(), list, &members).ok());
  ASSERT_EQ(members.members_size(), 2);
  EXPECT_EQ(members.members(0).user(), "users/mark");
  EXPECT_EQ(members.members(0).role(), v1::MAINTAINER);
  EXPECT_EQ(members.members(1).user(), "users/olga");
  EXPECT_EQ(members.members(1).role(), v1::OWNER);

  // Only owners delete the team.
  v1::DeleteTeamRequest del;
  del.set_name("teams/ml");
  v1::DeleteTeamResponse deleted;
  EXPECT_EQ(perm_->identity->DeleteTeam(perm_->AsUser("mark").get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(perm_->identity->DeleteTeam(perm_->AsUser("olga").get(), del, &deleted).ok());
  v1::GetTeamRequest get;
  get.set_name("teams/ml");
  v1::Team team;
  EXPECT_EQ(perm_->identity->GetTeam(perm_->AsUser("olga").get(), get, &team).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(PermissionIdentityTest, ProjectsAreVisibleOnlyToWhoCanReadThem) {
  for (const char* u : {"alice", "bob", "eve"}) ASSERT_TRUE(perm_->CreateUser(u, kPassword).ok());
  ASSERT_TRUE(perm_->CreateTeam("vision", "alice", {"bob"}).ok());
  ASSERT_TRUE(perm_->CreateProject("solo", "alice").ok());
  // Giving a project to a team needs maintainership of it; to another user, admin rights.
  auto st = perm_->CreateProject("team-proj", "bob", "teams/vision");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_EQ(perm_->CreateProject("gift", "bob", "users/alice").code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(perm_->CreateProject("team-proj", "alice", "teams/vision").ok());
  EXPECT_EQ(perm_->CreateProject("solo", "eve").code(), absl::StatusCode::kAlreadyExists);

  auto names = [&](const std::string& user) {
    v1::ListProjectsRequest req;
    v1::ListProjectsResponse resp;
    EXPECT_TRUE(perm_->identity->ListProjects(perm_->AsUser(user).get(), req, &resp).ok());
    std::vector<std::string> out;
    for (const auto& p : resp.projects()) out.push_back(p.name());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names("alice"), (V{"projects/default", "projects/solo", "projects/team-proj"}));
  EXPECT_EQ(names("bob"), (V{"projects/default", "projects/team-proj"}));
  EXPECT_EQ(names("eve"), (V{"projects/default"}));
  EXPECT_EQ(names("admin"), (V{"projects/default", "projects/solo", "projects/team-proj"}));

  // Permission before existence: strangers are refused alike for existing and missing projects.
  v1::GetProjectRequest get;
  v1::Project project;
  get.set_name("projects/solo");
  EXPECT_EQ(perm_->identity->GetProject(perm_->AsUser("eve").get(), get, &project).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  get.set_name("projects/nowhere");
  EXPECT_EQ(perm_->identity->GetProject(perm_->AsUser("eve").get(), get, &project).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(perm_->identity->GetProject(perm_->AsAdmin().get(), get, &project).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Team members edit nothing of a team project's settings; its maintainers/owners do.
  v1::UpdateProjectRequest upd;
  upd.mutable_project()->set_name("projects/team-proj");
  upd.mutable_project()->set_description("shared");
  upd.mutable_update_mask()->add_paths("description");
  EXPECT_EQ(perm_->identity->UpdateProject(perm_->AsUser("bob").get(), upd, &project).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->identity->UpdateProject(perm_->AsUser("alice").get(), upd, &project).ok());
  EXPECT_EQ(project.description(), "shared");
  EXPECT_TRUE(perm_->WaitForEvent("submarine.permission.v1.ProjectChanged", "projects/team-proj"));
}

}  // namespace
}  // namespace submarine::testing
