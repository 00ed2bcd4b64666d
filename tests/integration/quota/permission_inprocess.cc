#include "tests/integration/quota/permission_inprocess.h"

#include "absl/strings/str_cat.h"
#include "common/api/idempotency.h"
#include "common/db/migrations.h"
#include "common/events/outbox.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "services/permission/audit_store.h"
#include "services/permission/credential_store.h"
#include "services/permission/permission_app.h"
#include "services/permission/permission_store.h"
#include "services/permission/quota_store.h"
#include "tests/support/test_postgres.h"

namespace submarine::permission::testing {

namespace {

using submarine::common::v1::Principal;
using submarine::testing::TestPostgres;

constexpr char kSchema[] = "permission";

}  // namespace

absl::StatusOr<std::unique_ptr<PermissionInProcess>> PermissionInProcess::Start(
    InProcessOptions options) {
  std::unique_ptr<PermissionInProcess> p(new PermissionInProcess());
  auto& pg = TestPostgres::Get();
  p->dbname_ = pg.CreateDatabase("perm_quota");
  p->conninfo_ = pg.ConnInfo(p->dbname_);
  try {
    pqxx::connection conn(p->conninfo_);
    SUBMARINE_RETURN_IF_ERROR(
        db::ApplyMigrations(conn, kSchema, "events", events::EventsMigrations()));
    SUBMARINE_RETURN_IF_ERROR(
        db::ApplyMigrations(conn, kSchema, "idempotency", api::IdempotencyMigrations()));
    SUBMARINE_RETURN_IF_ERROR(
        db::ApplyMigrations(conn, kSchema, "permission", PermissionMigrations()));
  } catch (...) {
    return db::StatusFromCurrentException();
  }
  db::ConnectionPool::Options po;
  po.conninfo = p->conninfo_;
  po.schema = kSchema;
  po.size = options.pool_size;
  // The 50-way races queue for connections; they must wait rather than fail.
  po.acquire_timeout = options.acquire_timeout;
  // PermissionStore's too: every part resolves its caller from the users and teams tables; the
  // events' because the managers write their events to the outbox.
  po.statements = {&PermissionStore::Statements(),  &QuotaStore::Statements(),
                   &CredentialStore::Statements(),  &AuditStore::Statements(),
                   &api::Idempotency::Statements(), &events::Statements()};
  SUBMARINE_ASSIGN_OR_RETURN(p->pool_, db::ConnectionPool::Create(po));

  const std::string secret(32, 's');
  p->codec_ = std::make_shared<auth::PrincipalCodec>(secret);
  rpc::SetPrincipalCodec(p->codec_);
  // As the service host makes it for the permission service: sealed answers.
  p->idempotency_ = std::make_unique<api::Idempotency>(secret);
  const api::Idempotency* idempotency = p->idempotency_.get();

  const Clock& clock = options.manual_clock ? static_cast<const Clock&>(p->clock_) : Clock::Real();
  p->password_cost_ = options.identity.passwords.cost;
  SUBMARINE_ASSIGN_OR_RETURN(
      p->identity_,
      Identity::Create(p->pool_.get(), idempotency, std::move(options.identity), clock,
                       IdGenerator::Secure()));
  p->access_manager_ =
      std::make_unique<AccessManager>(p->pool_.get(), idempotency, clock, IdGenerator::Secure());
  p->identity_service_ = std::make_unique<IdentityServiceImpl>(p->identity_.get());
  p->access_service_ = std::make_unique<AccessServiceImpl>(p->access_manager_.get());
  p->quota_ = std::make_unique<QuotaServiceImpl>(p->pool_.get(), idempotency, options.config,
                                                 clock, IdGenerator::Secure());
  p->credentials_ =
      std::make_unique<CredentialServiceImpl>(p->pool_.get(), idempotency,
                                                        options.master_key, clock);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  rpc::InstallCallInterceptor(builder);
  builder.RegisterService(p->identity_service_.get());
  builder.RegisterService(p->access_service_.get());
  builder.RegisterService(p->quota_.get());
  builder.RegisterService(p->credentials_.get());
  p->audit_ = std::make_unique<AuditServiceImpl>(p->pool_.get());
  builder.RegisterService(p->audit_.get());
  if (options.with_events) {
    p->event_log_ = std::make_unique<events::EventLogService>("permission", p->pool_.get(), secret);
    builder.RegisterService(p->event_log_.get());
  }
  p->server_ = builder.BuildAndStart();
  if (!p->server_ || port == 0) return Unavailable("cannot start the gRPC server");
  p->address_ = absl::StrCat("127.0.0.1:", port);

  if (options.with_events) {
    events::OutboxRelay::Options relay;
    relay.publisher = "permission";
    relay.topic_prefix = "submarine.permission.v1.";
    relay.conninfo = p->conninfo_;
    relay.schema = kSchema;
    relay.pool = p->pool_.get();
    relay.events = options.config.common().events();
    relay.secret = secret;
    p->relay_ = std::make_unique<events::OutboxRelay>(relay);
    std::vector<rpc::BackgroundTask*> tasks = {p->relay_.get()};
    // The service's own stream and each peer's, applied as the service host would.
    std::vector<config::v1::PeerService> streams(options.config.common().peers().begin(),
                                                 options.config.common().peers().end());
    config::v1::PeerService self;
    self.set_name("permission");
    self.set_topic_prefix("submarine.permission.v1.");
    self.set_address(p->address_);
    streams.push_back(self);
    for (const auto& stream : streams) {
      events::Subscriber::Options o;
      o.name = absl::StrCat("permission.", stream.name());
      o.service_name = "permission";
      o.publisher = stream.name();
      o.topic_prefix = stream.topic_prefix();
      o.subscribe_endpoint = options.config.common().events().subscribe_endpoint();
      o.event_log_address = stream.address();
      o.secret = secret;
      o.pool = p->pool_.get();
      o.apply = ApplyServiceEvent;
      p->subscribers_.push_back(std::make_unique<events::Subscriber>(std::move(o)));
      tasks.push_back(p->subscribers_.back().get());
    }
    for (auto* t : tasks) {
      SUBMARINE_RETURN_IF_ERROR(t->Start());
      p->started_.push_back(t);
    }
  }

  auto channel = rpc::MakeChannel(p->address_);
  p->identity_stub = v1::IdentityService::NewStub(channel);
  p->access = v1::AccessService::NewStub(channel);
  p->quota = v1::QuotaService::NewStub(channel);
  p->credentials = v1::CredentialService::NewStub(channel);
  p->audit = v1::AuditService::NewStub(channel);
  return p;
}

PermissionInProcess::~PermissionInProcess() {
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

absl::StatusOr<pqxx::result> PermissionInProcess::Query(const std::string& sql,
                                                        const std::vector<std::string>& params) {
  pqxx::result out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    out = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    return absl::OkStatus();
  }));
  return out;
}

IdentityOptions InProcessOptions::CheapIdentity() {
  IdentityOptions o;
  o.sessions.signing_key = auth::GenerateSigningKey();
  o.passwords.cost.ops_limit = 1;
  o.passwords.cost.mem_limit = 8 * 1024;
  return o;
}

absl::Status PermissionInProcess::AddUser(const std::string& username, bool admin, bool disabled,
                                          const std::string& password) {
  std::string hash = "not-a-hash";
  if (!password.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(hash, auth::HashPassword(password, password_cost_));
  }
  return Query(
             "INSERT INTO users (username, password_hash, admin, disabled, create_time, "
             "update_time) VALUES ($1, $2, $3::boolean, $4::boolean, now(), now())",
             {username, hash, admin ? "true" : "false", disabled ? "true" : "false"})
      .status();
}

absl::Status PermissionInProcess::AddTeam(const std::string& team_id,
                                          const std::vector<std::string>& members) {
  SUBMARINE_RETURN_IF_ERROR(
      Query("INSERT INTO teams (team_id, create_time, update_time) VALUES ($1, now(), now())",
            {team_id})
          .status());
  for (const auto& m : members) {
    SUBMARINE_RETURN_IF_ERROR(
        Query("INSERT INTO team_members (team_id, username, role) VALUES ($1, $2, 1)", {team_id, m})
            .status());
  }
  return absl::OkStatus();
}

absl::Status PermissionInProcess::AddProject(const std::string& project_id,
                                             const std::string& owner) {
  return Query(
             "INSERT INTO projects (project_id, owner, create_time, update_time) "
             "VALUES ($1, $2, now(), now())",
             {project_id, owner})
      .status();
}

Principal PermissionInProcess::User(const std::string& username) {
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user(username);
  return p;
}

Principal PermissionInProcess::Service(const std::string& service, const std::string& for_user) {
  Principal p;
  p.set_kind(Principal::SERVICE);
  p.set_service(service);
  p.set_user(for_user);
  return p;
}

std::unique_ptr<grpc::ClientContext> PermissionInProcess::As(const Principal& principal,
                                                             const std::string& request_id) const {
  auto ctx = Anonymous();
  rpc::ActAs(ctx.get(), principal, request_id);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> PermissionInProcess::Anonymous() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

}  // namespace submarine::permission::testing
