#include "tests/integration/permission/permission_fixture.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/config/config.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::testing {

namespace pv1 = submarine::permission::v1;
using submarine::common::v1::Principal;

std::string PermissionConfig(const PermissionProcess& p, const std::string& bus) {
  auto& pg = TestPostgres::Get();
  // The lowest Argon2id cost libsodium accepts keeps tests fast; production uses the defaults.
  return absl::StrCat(
      "server:\n  grpc_listen: 127.0.0.1:0\n  shutdown_grace_ms: 5000\n  gateway_secret_file: ",
      p.secret_file, "\n", "database:\n  host: ", pg.socket_dir(), "\n  port: ", pg.port(),
      "\n  dbname: ", p.dbname, "\n  user: postgres\n  schema: permission\n",
      "signing_key_file: ", p.signing_key_file(), "\n", "master_key_file: ", p.master_key_file(),
      "\n", "admin_password_file: ", p.admin_password_file(), "\n",
      "password_ops_limit: 1\npassword_mem_limit_kib: 8\n", "housekeeping_interval_ms: 500\n",
      "events:\n  publish_endpoint: \"", bus, "\"\n  heartbeat_ms: 200\n");
}

absl::StatusOr<std::unique_ptr<PermissionProcess>> StartPermission(const std::string& dbname,
                                                                   const std::string& dir,
                                                                   const std::string& extra_yaml,
                                                                   const std::string& bus) {
  auto p = std::make_unique<PermissionProcess>();
  p->dir = dir.empty() ? MakeTempDir("perm-test") : dir;
  p->dbname = dbname.empty() ? TestPostgres::Get().CreateDatabase("perm") : dbname;
  p->secret_file = p->dir + "/internal.secret";
  auto existing = config::ReadSecretFile(p->secret_file);
  if (existing.ok()) {
    p->secret = *existing;
  } else {
    p->secret = auth::RandomToken(32);
    SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(p->secret_file, p->secret, 0600));
  }
  p->codec = std::make_shared<auth::PrincipalCodec>(p->secret);
  rpc::SetPrincipalCodec(p->codec);  // rpc::MakeChannel signs this test's calls with it
  SUBMARINE_ASSIGN_OR_RETURN(p->process,
                             StartService("submarine-permission", p->dir, "permission",
                                          PermissionConfig(*p, bus) + extra_yaml, &p->ready));
  p->channel = rpc::MakeChannel(p->ready.grpc);
  p->identity = pv1::IdentityService::NewStub(p->channel);
  p->access = pv1::AccessService::NewStub(p->channel);
  p->quota = pv1::QuotaService::NewStub(p->channel);
  p->credentials = pv1::CredentialService::NewStub(p->channel);
  p->audit = pv1::AuditService::NewStub(p->channel);
  p->submarine = pv1::SubmarineAuthApi::NewStub(p->channel);
  p->events = submarine::common::v1::EventLog::NewStub(p->channel);
  return p;
}

std::string PermissionProcess::AdminPassword() const {
  auto pw = config::ReadSecretFile(admin_password_file());
  return pw.ok() ? *pw : "";
}

std::unique_ptr<grpc::ClientContext> PermissionProcess::Anonymous(
    const std::string& request_id) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ctx->AddMetadata("x-request-id", request_id.empty() ? IdGenerator::Secure().Uuid() : request_id);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> PermissionProcess::WithPrincipal(
    const Principal& principal, const std::string& request_id) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  rpc::ActAs(ctx.get(), principal, request_id);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> PermissionProcess::AsUser(
    const std::string& user, const std::string& token_id, const std::string& request_id) const {
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user(user);
  p.set_token_id(token_id);
  return WithPrincipal(p, request_id);
}

std::unique_ptr<grpc::ClientContext> PermissionProcess::AsService(
    const std::string& service, const std::string& on_behalf_of,
    const std::string& request_id) const {
  Principal p;
  p.set_kind(Principal::SERVICE);
  p.set_service(service);
  p.set_user(on_behalf_of);
  return WithPrincipal(p, request_id);
}

absl::StatusOr<pv1::LoginResponse> PermissionProcess::Login(const std::string& username,
                                                            const std::string& password) const {
  pv1::LoginRequest req;
  req.set_username(username);
  req.set_password(password);
  pv1::LoginResponse resp;
  grpc::Status st = identity->Login(Anonymous().get(), req, &resp);
  if (!st.ok()) return FromGrpcStatus(st);
  return resp;
}

absl::StatusOr<pv1::User> PermissionProcess::CreateUser(const std::string& username,
                                                        const std::string& password,
                                                        bool admin) const {
  pv1::CreateUserRequest req;
  req.set_user_id(username);
  req.set_password(password);
  req.mutable_user()->set_display_name(username);
  req.mutable_user()->set_admin(admin);
  pv1::User user;
  grpc::Status st = identity->CreateUser(AsAdmin().get(), req, &user);
  if (!st.ok()) return FromGrpcStatus(st);
  return user;
}

std::vector<submarine::common::v1::Event> PermissionProcess::Events() const {
  std::vector<submarine::common::v1::Event> out;
  submarine::common::v1::ListEventsRequest req;
  req.set_publisher("permission");
  req.set_page_size(5000);
  while (true) {
    submarine::common::v1::ListEventsResponse resp;
    if (!events->ListEvents(AsService().get(), req, &resp).ok()) return out;
    for (const auto& e : resp.events()) out.push_back(e);
    if (resp.events().empty()) return out;
    req.set_after_seq(resp.events(resp.events_size() - 1).header().seq());
  }
}

bool PermissionProcess::WaitForEvent(const std::string& topic, const std::string& resource) const {
  return WaitFor(
      [&] {
        for (const auto& e : Events()) {
          if (e.topic() == topic && e.header().resource() == resource) return true;
        }
        return false;
      },
      std::chrono::seconds(20));
}

absl::Status PermissionProcess::CreateTeam(const std::string& team_id, const std::string& owner,
                                           const std::vector<std::string>& members) const {
  pv1::CreateTeamRequest req;
  req.set_team_id(team_id);
  pv1::Team team;
  grpc::Status st = identity->CreateTeam(AsUser(owner).get(), req, &team);
  if (!st.ok()) return FromGrpcStatus(st);
  for (const auto& m : members) {
    pv1::SetTeamMemberRequest add;
    add.set_team("teams/" + team_id);
    add.mutable_member()->set_user("users/" + m);
    add.mutable_member()->set_role(pv1::MEMBER);
    pv1::TeamMember member;
    st = identity->SetTeamMember(AsUser(owner).get(), add, &member);
    if (!st.ok()) return FromGrpcStatus(st);
  }
  return absl::OkStatus();
}

absl::Status PermissionProcess::CreateProject(const std::string& project_id,
                                              const std::string& creator,
                                              const std::string& owner) const {
  pv1::CreateProjectRequest req;
  req.set_project_id(project_id);
  req.mutable_project()->set_owner(owner);
  pv1::Project project;
  grpc::Status st = identity->CreateProject(AsUser(creator).get(), req, &project);
  return st.ok() ? absl::OkStatus() : FromGrpcStatus(st);
}

}  // namespace submarine::testing
