// The access matrix of issue 3: users × teams × roles × actions on environments, every cell
// asserted (allowed, or PERMISSION_DENIED), including the exact set a list returns.
//
// Real processes: eventbus, permission service, environment service (authorization on) and, for
// the REST run, the gateway (authentication on). The gRPC run (ACCESS_TRANSPORT_GRPC) calls the
// environment service directly with USER principals signed with the internal secret, which is
// what the gateway sends after verifying a token; the REST run logs every user in and goes
// through the gateway with "Authorization: Bearer".
//
// Who may do what is written below as tables (project-level permission per user, and per-
// environment grants); the expected answer of each cell is the larger of the two, as
// docs/design/permission-service.md defines it.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/integration/permission/permission_fixture.h"
#include "tests/support/http_client.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::environment::v1;
namespace pv1 = submarine::permission::v1;
using submarine::common::v1::Principal;

constexpr char kPassword[] = "correct horse battery";
enum Level { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };

// --- The world ---------------------------------------------------------------------------------

// Users: uma owns projects; team "ml" (olivia OWNER, mike MAINTAINER, mia MEMBER) owns
// "teamproj"; team "ds" (dan) is EDITOR of "shared"; vic is VIEWER and pat PROJECT_ADMIN
// of "shared"; gus only has grants on single environments; sam has nothing; allUsers is VIEWER of
// "open" (and, from the bootstrap, of "default").
const std::vector<std::string> kUsers = {"uma", "olivia", "mike", "mia", "dan",
                                         "vic", "pat",    "gus",  "sam"};
const std::vector<std::string> kProjects = {"solo", "teamproj", "shared", "open"};
const std::map<std::string, std::vector<std::string>> kEnvironments = {
    {"solo", {"e1", "e2", "e3", "e4"}},
    {"teamproj", {"t1", "t2"}},
    {"shared", {"s1"}},
    {"open", {"o1"}},
};
// Project-level permission of each user (absent: none).
const std::map<std::string, std::map<std::string, Level>> kProjectLevel = {
    {"uma", {{"solo", kAdmin}, {"shared", kAdmin}, {"open", kAdmin}}},
    {"olivia", {{"teamproj", kAdmin}, {"open", kRead}}},
    {"mike", {{"teamproj", kAdmin}, {"open", kRead}}},
    {"mia", {{"teamproj", kWrite}, {"open", kRead}}},
    {"dan", {{"shared", kWrite}, {"open", kRead}}},
    {"vic", {{"shared", kRead}, {"open", kRead}}},
    {"pat", {{"shared", kAdmin}, {"open", kRead}}},
    {"gus", {{"open", kRead}}},
    {"sam", {{"open", kRead}}},
};
struct GrantSpec {
  std::string resource, subject;
  pv1::Permission permission;
  std::string granter;
};
const std::vector<GrantSpec> kGrants = {
    {"projects/solo/environments/e1", "users/gus", pv1::READ, "uma"},
    {"projects/solo/environments/e2", "teams/ds", pv1::WRITE, "uma"},
    {"projects/solo/environments/e3", "users/gus", pv1::ADMIN, "uma"},
    {"projects/teamproj/environments/t1", "allUsers", pv1::READ, "olivia"},
};
const std::map<std::string, std::set<std::string>> kTeamsOf = {
    {"olivia", {"ml"}}, {"mike", {"ml"}}, {"mia", {"ml"}}, {"dan", {"ds"}}};

std::string EnvName(const std::string& project, const std::string& id) {
  return absl::StrCat("projects/", project, "/environments/", id);
}

Level ProjectLevel(const std::string& user, const std::string& project) {
  auto u = kProjectLevel.find(user);
  if (u == kProjectLevel.end()) return kNone;
  auto p = u->second.find(project);
  return p == u->second.end() ? kNone : p->second;
}

Level EnvLevel(const std::string& user, const std::string& project, const std::string& id) {
  Level level = ProjectLevel(user, project);
  auto teams = kTeamsOf.count(user) ? kTeamsOf.at(user) : std::set<std::string>{};
  for (const auto& g : kGrants) {
    if (g.resource != EnvName(project, id)) continue;
    bool mine = g.subject == "allUsers" || g.subject == "users/" + user ||
                (g.subject.rfind("teams/", 0) == 0 && teams.count(g.subject.substr(6)));
    if (mine) level = std::max(level, static_cast<Level>(g.permission));
  }
  return level;
}

// --- Transports --------------------------------------------------------------------------------

class Transport {
 public:
  virtual ~Transport() = default;
  virtual absl::StatusCode Get(const std::string& user, const std::string& name) = 0;
  virtual absl::StatusCode Update(const std::string& user, const std::string& name) = 0;
  virtual absl::StatusCode Delete(const std::string& user, const std::string& name) = 0;
  virtual absl::StatusCode Create(const std::string& user, const std::string& project,
                                  const std::string& id) = 0;
  // Every name listed (all pages) or the error code.
  virtual absl::StatusOr<std::set<std::string>> List(const std::string& user,
                                                     const std::string& project) = 0;
};

class GrpcTransport : public Transport {
 public:
  GrpcTransport(const PermissionProcess* perm, v1::EnvironmentService::Stub* stub)
      : perm_(perm), stub_(stub) {}
  absl::StatusCode Get(const std::string& user, const std::string& name) override {
    v1::GetEnvironmentRequest req;
    req.set_name(name);
    v1::Environment out;
    return Code(stub_->GetEnvironment(perm_->AsUser(user).get(), req, &out));
  }
  absl::StatusCode Update(const std::string& user, const std::string& name) override {
    v1::UpdateEnvironmentRequest req;
    req.mutable_environment()->set_name(name);
    req.mutable_environment()->set_description("by " + user);
    req.mutable_update_mask()->add_paths("description");
    v1::Environment out;
    return Code(stub_->UpdateEnvironment(perm_->AsUser(user).get(), req, &out));
  }
  absl::StatusCode Delete(const std::string& user, const std::string& name) override {
    v1::DeleteEnvironmentRequest req;
    req.set_name(name);
    v1::DeleteEnvironmentResponse out;
    return Code(stub_->DeleteEnvironment(perm_->AsUser(user).get(), req, &out));
  }
  absl::StatusCode Create(const std::string& user, const std::string& project,
                          const std::string& id) override {
    v1::CreateEnvironmentRequest req;
    req.set_parent("projects/" + project);
    req.set_environment_id(id);
    req.mutable_environment()->set_image("python:3.11");
    v1::Environment out;
    return Code(stub_->CreateEnvironment(perm_->AsUser(user).get(), req, &out));
  }
  absl::StatusOr<std::set<std::string>> List(const std::string& user,
                                             const std::string& project) override {
    std::set<std::string> names;
    v1::ListEnvironmentsRequest req;
    req.set_parent("projects/" + project);
    req.set_page_size(2);  // several pages: filtering must not break paging
    do {
      v1::ListEnvironmentsResponse resp;
      grpc::Status st = stub_->ListEnvironments(perm_->AsUser(user).get(), req, &resp);
      if (!st.ok()) return FromGrpcStatus(st);
      for (const auto& e : resp.environments()) names.insert(e.name());
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return names;
  }

 private:
  static absl::StatusCode Code(const grpc::Status& st) {
    return static_cast<absl::StatusCode>(st.error_code());
  }
  const PermissionProcess* perm_;
  v1::EnvironmentService::Stub* stub_;
};

class RestTransport : public Transport {
 public:
  RestTransport(std::string address, std::map<std::string, std::string> tokens)
      : address_(std::move(address)), tokens_(std::move(tokens)) {}
  absl::StatusCode Get(const std::string& user, const std::string& name) override {
    return Call(user, "GET", "/v1/" + name, "").first;
  }
  absl::StatusCode Update(const std::string& user, const std::string& name) override {
    return Call(user, "PATCH", "/v1/" + name + "?updateMask=description",
                nlohmann::json{{"description", "by " + user}}.dump())
        .first;
  }
  absl::StatusCode Delete(const std::string& user, const std::string& name) override {
    return Call(user, "DELETE", "/v1/" + name, "").first;
  }
  absl::StatusCode Create(const std::string& user, const std::string& project,
                          const std::string& id) override {
    return Call(user, "POST",
                absl::StrCat("/v1/projects/", project, "/environments?environmentId=", id),
                R"({"image":"python:3.11"})")
        .first;
  }
  absl::StatusOr<std::set<std::string>> List(const std::string& user,
                                             const std::string& project) override {
    std::set<std::string> names;
    std::string token;
    do {
      auto [code, body] = Call(user, "GET",
                               absl::StrCat("/v1/projects/", project,
                                            "/environments?pageSize=2&pageToken=", token),
                               "");
      if (code != absl::StatusCode::kOk) return absl::Status(code, body.dump());
      for (const auto& e : body.value("environments", nlohmann::json::array())) {
        names.insert(e.at("name").get<std::string>());
      }
      token = body.value("nextPageToken", "");
    } while (!token.empty());
    return names;
  }

 private:
  std::pair<absl::StatusCode, nlohmann::json> Call(const std::string& user,
                                                   const std::string& method,
                                                   const std::string& target,
                                                   const std::string& body) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Authorization", "Bearer " + tokens_.at(user)}};
    if (!body.empty()) headers.push_back({"Content-Type", "application/json"});
    auto r = HttpCall(address_, method, target, body, headers);
    if (!r.ok()) return {absl::StatusCode::kUnknown, Message(r.status())};
    auto json = r->body.empty() ? nlohmann::json() : nlohmann::json::parse(r->body, nullptr, false);
    switch (r->status) {
      case 200: return {absl::StatusCode::kOk, json};
      case 401: return {absl::StatusCode::kUnauthenticated, json};
      case 403: return {absl::StatusCode::kPermissionDenied, json};
      case 404: return {absl::StatusCode::kNotFound, json};
      default: return {absl::StatusCode::kUnknown, json};
    }
  }
  std::string address_;
  std::map<std::string, std::string> tokens_;
};

// --- The stack ---------------------------------------------------------------------------------

class AccessMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("access");
    auto bus = StartEventBus(dir_);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(bus->process);
    frontend_ = bus->frontend;
    backend_ = bus->backend;

    auto perm = StartPermission("", "", "", frontend_);
    ASSERT_TRUE(perm.ok()) << perm.status();
    perm_ = std::move(*perm);
    for (const auto& u : kUsers) ASSERT_TRUE(perm_->CreateUser(u, kPassword).ok()) << u;
    ASSERT_TRUE(perm_->CreateTeam("ml", "olivia", {"mia"}).ok());
    SetTeamRole("ml", "mike", pv1::MAINTAINER);
    ASSERT_TRUE(perm_->CreateTeam("ds", "dan").ok());  // dan's team role does not matter here

    ASSERT_TRUE(perm_->CreateProject("solo", "uma").ok());
    ASSERT_TRUE(perm_->CreateProject("shared", "uma").ok());
    ASSERT_TRUE(perm_->CreateProject("open", "uma").ok());
    ASSERT_TRUE(perm_->CreateProject("teamproj", "olivia", "teams/ml").ok());
    Bind("uma", "shared", "users/vic", pv1::VIEWER);
    Bind("uma", "shared", "teams/ds", pv1::EDITOR);
    Bind("uma", "shared", "users/pat", pv1::PROJECT_ADMIN);
    Bind("uma", "open", "allUsers", pv1::VIEWER);
    for (const auto& g : kGrants) {
      pv1::CreateGrantRequest req;
      req.mutable_grant()->set_resource(g.resource);
      req.mutable_grant()->set_subject(g.subject);
      req.mutable_grant()->set_permission(g.permission);
      pv1::Grant grant;
      grpc::Status st = perm_->access->CreateGrant(perm_->AsUser(g.granter).get(), req, &grant);
      ASSERT_TRUE(st.ok()) << g.resource << ": " << st.error_message();
    }

    auto env = StartEnvironment("", "", "", frontend_,
                                PermissionYaml(perm_->ready.grpc, backend_, 600000),
                                perm_->secret_file);
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    for (const auto& [project, ids] : kEnvironments) {
      for (const auto& id : ids) ASSERT_NO_FATAL_FAILURE(CreateAsAdmin(project, id));
    }

#ifdef ACCESS_TRANSPORT_REST
    std::string auth = absl::StrCat("auth:\n  address: \"", perm_->ready.grpc,
                                    "\"\n  subscribe_endpoint: \"", backend_,
                                    "\"\nserver:\n  gateway_secret_file: ", perm_->secret_file,
                                    "\n");
    ASSERT_TRUE(StartGateway(env_.get(), auth).ok());
    std::map<std::string, std::string> tokens;
    for (const auto& u : kUsers) {
      auto login = perm_->Login(u, kPassword);
      ASSERT_TRUE(login.ok()) << u << ": " << login.status();
      tokens[u] = login->access_token();
    }
    // Authentication is on: no token, no answer.
    auto anonymous = HttpCall(env_->gateway_ready.http, "GET", "/v1/projects/open/environments");
    ASSERT_TRUE(anonymous.ok());
    ASSERT_EQ(anonymous->status, 401) << anonymous->body;
    transport_ = std::make_unique<RestTransport>(env_->gateway_ready.http, tokens);
#else
    transport_ = std::make_unique<GrpcTransport>(perm_.get(), env_->stub.get());
#endif
  }

  std::unique_ptr<grpc::ClientContext> AsAdmin() {
    Principal p;
    p.set_kind(Principal::USER);
    p.set_user("admin");
    p.set_admin(true);
    return perm_->WithPrincipal(p);
  }
  void SetTeamRole(const std::string& team, const std::string& user, pv1::TeamRole role) {
    pv1::SetTeamMemberRequest req;
    req.set_team("teams/" + team);
    req.mutable_member()->set_user("users/" + user);
    req.mutable_member()->set_role(role);
    pv1::TeamMember member;
    grpc::Status st = perm_->identity->SetTeamMember(AsAdmin().get(), req, &member);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  void Bind(const std::string& as, const std::string& project, const std::string& subject,
            pv1::Role role) {
    pv1::CreateRoleBindingRequest req;
    req.set_parent("projects/" + project);
    req.mutable_role_binding()->set_subject(subject);
    req.mutable_role_binding()->set_role(role);
    pv1::RoleBinding binding;
    grpc::Status st = perm_->access->CreateRoleBinding(perm_->AsUser(as).get(), req, &binding);
    ASSERT_TRUE(st.ok()) << project << " " << subject << ": " << st.error_message();
  }
  void CreateAsAdmin(const std::string& project, const std::string& id) {
    v1::CreateEnvironmentRequest req;
    req.set_parent("projects/" + project);
    req.set_environment_id(id);
    req.mutable_environment()->set_image("python:3.11");
    v1::Environment out;
    grpc::Status st = env_->stub->CreateEnvironment(AsAdmin().get(), req, &out);
    ASSERT_TRUE(st.ok()) << project << "/" << id << ": " << st.error_message();
  }
  void DeleteAsAdmin(const std::string& name) {
    v1::DeleteEnvironmentRequest req;
    req.set_name(name);
    v1::DeleteEnvironmentResponse out;
    grpc::Status st = env_->stub->DeleteEnvironment(AsAdmin().get(), req, &out);
    ASSERT_TRUE(st.ok()) << name << ": " << st.error_message();
  }

  static absl::StatusCode Expect(bool allowed) {
    return allowed ? absl::StatusCode::kOk : absl::StatusCode::kPermissionDenied;
  }

  std::string dir_, frontend_, backend_;
  ChildProcess bus_;
  std::unique_ptr<PermissionProcess> perm_;
  std::unique_ptr<EnvironmentProcess> env_;
  std::unique_ptr<Transport> transport_;
};

TEST_F(AccessMatrixTest, EveryUserActionAndTargetIsAllowedOrDenied) {
  auto& t = *transport_;
  int cells = 0;
  // list: exactly what the caller can read.
  for (const auto& user : kUsers) {
    for (const auto& project : kProjects) {
      std::set<std::string> expected;
      for (const auto& id : kEnvironments.at(project)) {
        if (EnvLevel(user, project, id) >= kRead) expected.insert(EnvName(project, id));
      }
      auto listed = t.List(user, project);
      ASSERT_TRUE(listed.ok()) << user << " lists " << project << ": " << listed.status();
      EXPECT_EQ(*listed, expected) << user << " lists " << project;
      ++cells;
    }
  }
  // get and update of every environment.
  for (const auto& user : kUsers) {
    for (const auto& [project, ids] : kEnvironments) {
      for (const auto& id : ids) {
        std::string name = EnvName(project, id);
        Level level = EnvLevel(user, project, id);
        EXPECT_EQ(t.Get(user, name), Expect(level >= kRead)) << user << " gets " << name;
        EXPECT_EQ(t.Update(user, name), Expect(level >= kWrite)) << user << " updates " << name;
        cells += 2;
      }
      // A missing environment is answered like an existing one the caller cannot read.
      std::string ghost = EnvName(project, "ghost");
      EXPECT_EQ(t.Get(user, ghost), ProjectLevel(user, project) >= kRead
                                        ? absl::StatusCode::kNotFound
                                        : absl::StatusCode::kPermissionDenied)
          << user << " gets " << ghost;
      ++cells;
    }
  }
  // create in every project (what was created is removed again so the lists above stay true).
  for (const auto& user : kUsers) {
    for (const auto& project : kProjects) {
      bool allowed = ProjectLevel(user, project) >= kWrite;
      EXPECT_EQ(t.Create(user, project, "new-" + user), Expect(allowed))
          << user << " creates in " << project;
      if (allowed) {
        ASSERT_NO_FATAL_FAILURE(DeleteAsAdmin(EnvName(project, "new-" + user)));
      }
      ++cells;
    }
  }
  // delete of every environment (recreated after an allowed delete; grants follow the name).
  for (const auto& user : kUsers) {
    for (const auto& [project, ids] : kEnvironments) {
      for (const auto& id : ids) {
        std::string name = EnvName(project, id);
        bool allowed = EnvLevel(user, project, id) >= kWrite;
        EXPECT_EQ(t.Delete(user, name), Expect(allowed)) << user << " deletes " << name;
        if (allowed) {
          ASSERT_NO_FATAL_FAILURE(CreateAsAdmin(project, id));
        }
        ++cells;
      }
    }
  }
  // Nobody but the bootstrap "admin" and allUsers-as-VIEWER has anything in "default".
  for (const auto& user : kUsers) {
    EXPECT_EQ(t.Create(user, "default", "nope"), absl::StatusCode::kPermissionDenied) << user;
    EXPECT_EQ(t.Get(user, "projects/default/environments/notebook-env"), absl::StatusCode::kOk)
        << user;
    // A project that does not exist: the same answer as one without access.
    EXPECT_EQ(t.Create(user, "nowhere", "x"), absl::StatusCode::kPermissionDenied) << user;
    cells += 3;
  }
  // 9 users × (4 lists + 8 environments × {get, update} + 4 missing + 4 creates + 8 deletes + 3
  // in "default"/"nowhere"): every loop ran over the whole world.
  EXPECT_EQ(cells, 351);
}

// "Two users in different teams cannot see each other's private environments but can after a
// grant" (and cannot again once the grant is deleted: answers are cached, events drop them).
TEST_F(AccessMatrixTest, PrivateEnvironmentsAreSharedByAGrantAndUnsharedByItsDeletion) {
  auto& t = *transport_;
  // mia (team ml) and dan (team ds) each own a private project.
  ASSERT_TRUE(perm_->CreateProject("mia-lab", "mia").ok());
  ASSERT_TRUE(perm_->CreateProject("dan-lab", "dan").ok());
  ASSERT_EQ(t.Create("mia", "mia-lab", "secret"), absl::StatusCode::kOk);
  ASSERT_EQ(t.Create("dan", "dan-lab", "hidden"), absl::StatusCode::kOk);
  const std::string mias = "projects/mia-lab/environments/secret";
  const std::string dans = "projects/dan-lab/environments/hidden";
  EXPECT_EQ(t.Get("dan", mias), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(t.Get("mia", dans), absl::StatusCode::kPermissionDenied);
  auto dan_sees = t.List("dan", "mia-lab");
  ASSERT_TRUE(dan_sees.ok());
  EXPECT_TRUE(dan_sees->empty());

  // mia shares hers with dan's whole team.
  pv1::CreateGrantRequest req;
  req.mutable_grant()->set_resource(mias);
  req.mutable_grant()->set_subject("teams/ds");
  req.mutable_grant()->set_permission(pv1::READ);
  pv1::Grant grant;
  ASSERT_TRUE(perm_->access->CreateGrant(perm_->AsUser("mia").get(), req, &grant).ok());
  ASSERT_TRUE(WaitFor([&] { return t.Get("dan", mias) == absl::StatusCode::kOk; }));
  dan_sees = t.List("dan", "mia-lab");
  ASSERT_TRUE(dan_sees.ok());
  EXPECT_EQ(*dan_sees, std::set<std::string>{mias});
  EXPECT_EQ(t.Update("dan", mias), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(t.Get("mia", dans), absl::StatusCode::kPermissionDenied) << "sharing is one-way";

  pv1::DeleteGrantRequest del;
  del.set_name(grant.name());
  pv1::DeleteGrantResponse deleted;
  ASSERT_TRUE(perm_->access->DeleteGrant(perm_->AsUser("mia").get(), del, &deleted).ok());
  ASSERT_TRUE(
      WaitFor([&] { return t.Get("dan", mias) == absl::StatusCode::kPermissionDenied; }));
  dan_sees = t.List("dan", "mia-lab");
  ASSERT_TRUE(dan_sees.ok());
  EXPECT_TRUE(dan_sees->empty());
}

}  // namespace
}  // namespace submarine::testing
