#include "services/permission/identity_manager.h"

#include <google/protobuf/util/time_util.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/api/list_request.h"
#include "common/config/config.h"
#include "common/events/outbox.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;
using submarine::common::v1::Principal;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMinPassword = 12;
constexpr size_t kMaxPassword = 1024;
constexpr int64_t kMaxApiTokenTtl = int64_t{10} * 366 * 24 * 3600;
constexpr char kAdmin[] = "admin";
constexpr char kDefaultProject[] = "default";

google::protobuf::Timestamp Ts(int64_t micros) { return TimeUtil::MicrosecondsToTimestamp(micros); }

// Not-before instants are whole seconds rounded UP: a token carries "iat" in whole seconds, and
// a token issued after the change gets iat >= not_before (see IssueTokens), while every token
// issued before it has iat < not_before. The gateway refuses iat < not_before.
int64_t CeilSecondMicros(int64_t micros) { return (micros + 999999) / 1000000 * 1000000; }

absl::Status AdminOnly(const std::string& resource, const std::string& what) {
  return Denied(resource, absl::StrCat(what, " (administrators only)"));
}

absl::Status CheckPassword(const std::string& password, const std::string& field) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    return InvalidField(
        field, absl::StrCat("passwords are ", kMinPassword, " to ", kMaxPassword, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckEmail(const std::string& email, const std::string& field) {
  SUBMARINE_RETURN_IF_ERROR(CheckText(email, field, 254));
  if (email.empty()) return absl::OkStatus();
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string::npos || email.find(' ') != std::string::npos) {
    return InvalidField(field, "is not an e-mail address (one \"@\", no spaces)");
  }
  return absl::OkStatus();
}

absl::Status LastAdmin(const std::string& username) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "LAST_ADMIN",
                   absl::StrCat("user \"", username,
                                "\" is the last enabled administrator; make another user an "
                                "administrator first"),
                   {{"user", username}});
}

absl::Status LastOwner(const std::string& team) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "LAST_OWNER",
                   absl::StrCat("team \"", team,
                                "\" would have no owner left; make another "
                                "member an owner first"),
                   {{"team", team}});
}

absl::Status EtagMismatch(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                   absl::StrCat(Quote(name),
                                " was changed concurrently: the etag does not match; "
                                "read it again and retry"),
                   {{"resource", name}});
}

// Field mask paths, lowerCamel accepted; empty when `mask` has none.
absl::StatusOr<std::vector<std::string>> MaskPaths(const google::protobuf::FieldMask& mask,
                                                   const std::set<std::string>& allowed) {
  std::vector<std::string> out;
  for (const auto& p : mask.paths()) {
    std::string snake;
    for (char c : p) {
      if (c >= 'A' && c <= 'Z') {
        snake += '_';
        snake += static_cast<char>(c - 'A' + 'a');
      } else {
        snake += c;
      }
    }
    if (!allowed.count(snake)) {
      return InvalidField("update_mask", absl::StrCat("field ", Quote(p), " cannot be updated"));
    }
    out.push_back(snake);
  }
  return out;
}

template <class Event>
absl::Status Publish(pqxx::work& tx, const Event& event, const std::string& resource,
                     const CallInfo& call) {
  return events::AppendToOutbox(tx, event, resource, call.request_id, call.subject);
}

absl::Status PublishUser(pqxx::work& tx, const v1::User& user, v1::Change change,
                         const CallInfo& call) {
  v1::UserChanged event;
  *event.mutable_user() = user;
  event.set_change(change);
  return Publish(tx, event, user.name(), call);
}

absl::Status PublishTeam(pqxx::work& tx, const std::string& team, v1::Change change,
                         const std::string& user, const CallInfo& call) {
  v1::TeamChanged event;
  event.set_team("teams/" + team);
  event.set_change(change);
  event.set_user(user);
  return Publish(tx, event, event.team(), call);
}

absl::Status PublishProject(pqxx::work& tx, const v1::Project& project, v1::Change change,
                            const CallInfo& call) {
  v1::ProjectChanged event;
  *event.mutable_project() = project;
  event.set_change(change);
  return Publish(tx, event, project.name(), call);
}

void FillTeams(pqxx::transaction_base& tx, std::vector<v1::User*> users) {
  std::vector<std::string> names;
  std::map<std::string, v1::User*> by_name;
  for (auto* u : users) {
    std::string n = u->name().substr(6);
    names.push_back(n);
    by_name[n] = u;
  }
  for (const auto& m : PermissionStore::Memberships(tx, names)) {
    by_name[m.username]->add_teams("teams/" + m.team_id);
  }
}

// Who may own a project the caller creates or transfers: themselves, a team they maintain or
// own; admins anyone. The owner must exist.
absl::Status CheckOwner(pqxx::transaction_base& tx, const Caller& caller, const std::string& owner,
                        const std::string& field) {
  std::string id;
  if (owner.rfind("users/", 0) == 0) {
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(owner, field, &id));
    if (!caller.is(id) && !caller.admin) {
      return Denied(owner, "giving a project to another user (administrators only)");
    }
    if (!PermissionStore::FindUser(tx, id, false)) return NotFound("user", owner);
    return absl::OkStatus();
  }
  if (owner.rfind("teams/", 0) == 0) {
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(owner, field, &id));
    if (!caller.admin && caller.TeamRole(id) < v1::MAINTAINER) {
      return Denied(owner, "giving a project to a team you do not maintain");
    }
    if (!PermissionStore::FindTeam(tx, id, false)) return NotFound("team", owner);
    return absl::OkStatus();
  }
  return InvalidField(
      field, absl::StrCat("expected \"users/{user}\" or \"teams/{team}\", got ", Quote(owner)));
}

// Refuses to delete a user or team that still owns projects (a re-created namesake would
// inherit them).
absl::Status CheckOwnsNothing(pqxx::transaction_base& tx, const std::string& owner) {
  auto owned = PermissionStore::ListProjects(tx, false, {owner}, {}, 0, 1);
  if (!owned.empty()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "OWNS_PROJECTS",
                     absl::StrCat(owner, " still owns ", owned[0].project.name(),
                                  "; transfer or delete its projects first"),
                     {{"owner", owner}, {"project", owned[0].project.name()}});
  }
  return absl::OkStatus();
}

// Resumes a list kept in the order rows were created (their `seq`).
constexpr auto kAfterSeq = [](const auto& row, submarine::common::v1::PageToken* next) {
  next->set_after_id(row.seq);
};

}  // namespace

absl::Status LoginFailed() {
  return MakeError(absl::StatusCode::kUnauthenticated, "LOGIN_FAILED",
                   "invalid username or password");
}

absl::StatusOr<std::unique_ptr<IdentityManager>> IdentityManager::Create(db::ConnectionPool* pool,
                                                                         IdentityOptions options,
                                                                         const Clock& clock,
                                                                         IdGenerator& ids) {
  std::unique_ptr<IdentityManager> m(new IdentityManager(pool, std::move(options), clock, ids));
  // Verified against when the user is unknown or disabled, so a failed login costs the same
  // whether or not the user exists.
  SUBMARINE_ASSIGN_OR_RETURN(m->dummy_hash_,
                             auth::HashPassword(auth::RandomToken(16), m->options_.password_cost));
  return m;
}

int64_t IdentityManager::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
      .count();
}

absl::Status IdentityManager::Bootstrap(bool* created) {
  if (created) *created = false;
  std::string password = auth::RandomToken(18);
  SUBMARINE_ASSIGN_OR_RETURN(std::string hash,
                             auth::HashPassword(password, options_.password_cost));
  CallInfo system;
  system.subject = "system";
  bool did = false;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    did = false;
    PermissionStore::LockBootstrap(tx);
    if (!PermissionStore::MarkOnce(tx, "bootstrapped")) return absl::OkStatus();
    int64_t now = NowMicros();
    if (!PermissionStore::FindUser(tx, kAdmin, false)) {
      v1::User admin;
      admin.set_name(absl::StrCat("users/", kAdmin));
      admin.set_display_name("Administrator");
      admin.set_admin(true);
      admin.set_etag(ids_.RandomHex(8));
      *admin.mutable_create_time() = Ts(now);
      *admin.mutable_update_time() = Ts(now);
      PermissionStore::InsertUser(tx, kAdmin, admin, hash);
      SUBMARINE_RETURN_IF_ERROR(PublishUser(tx, admin, v1::CREATED, system));
    }
    if (!PermissionStore::FindProject(tx, kDefaultProject, false)) {
      v1::Project project;
      project.set_name(absl::StrCat("projects/", kDefaultProject));
      project.set_display_name("Default project");
      project.set_owner(absl::StrCat("users/", kAdmin));
      project.set_etag(ids_.RandomHex(8));
      *project.mutable_create_time() = Ts(now);
      *project.mutable_update_time() = Ts(now);
      PermissionStore::InsertProject(tx, kDefaultProject, project);
      SUBMARINE_RETURN_IF_ERROR(PublishProject(tx, project, v1::CREATED, system));
      bool replaced = false;
      PermissionStore::UpsertBinding(tx, kDefaultProject, ids_.RandomHex(8), kAllUsers, v1::VIEWER,
                                     now, &replaced);
      v1::AccessChanged access;
      access.set_resource(project.name());
      access.set_subject(kAllUsers);
      access.set_change(v1::CREATED);
      SUBMARINE_RETURN_IF_ERROR(Publish(tx, access, project.name(), system));
    }
    // Written before COMMIT: if the file cannot be written nothing is created, and the marker
    // guarantees no committed admin ever had an earlier password, so overwriting is safe here.
    if (!options_.admin_password_file.empty()) {
      SUBMARINE_RETURN_IF_ERROR(
          config::WriteFileAtomic(options_.admin_password_file, password + "\n", 0600));
    }
    did = true;
    return absl::OkStatus();
  }));
  if (created) *created = did;
  if (did) {
    log::Get("bootstrap")
        ->warn("created user \"admin\"; its password is in {}", options_.admin_password_file);
  }
  return absl::OkStatus();
}

// ---- authentication

absl::StatusOr<v1::LoginResponse> IdentityManager::IssueTokens(pqxx::work& tx,
                                                               const std::string& username) {
  auto user = PermissionStore::FindUser(tx, username, false);
  if (!user || user->user.disabled()) return LoginFailed();
  v1::LoginResponse resp;
  *resp.mutable_user() = user->user;
  FillTeams(tx, {resp.mutable_user()});
  int64_t now = NowMicros();
  auth::TokenClaims claims;
  claims.issuer = options_.issuer;
  claims.subject = username;
  claims.token_id = ids_.RandomHex(16);
  claims.kind = "access";
  for (const auto& t : resp.user().teams()) claims.teams.push_back(t.substr(6));
  claims.admin = user->user.admin();
  claims.issued_at = std::max(now / 1000000, PermissionStore::NotBefore(tx, username) / 1000000);
  claims.expires_at = claims.issued_at + options_.access_ttl_seconds;
  resp.set_access_token(auth::SignJwt(claims, options_.signing_key));
  resp.set_expires_in(options_.access_ttl_seconds);
  resp.set_token_type("Bearer");
  std::string refresh = auth::RandomToken(32);
  PermissionStore::InsertRefreshToken(tx, auth::Sha256Hex(refresh), username, now,
                                      now + options_.refresh_ttl_seconds * 1000000);
  resp.set_refresh_token(refresh);
  return resp;
}

absl::StatusOr<v1::LoginResponse> IdentityManager::Login(const std::string& username,
                                                         const std::string& password) {
  std::optional<UserRow> user;
  // Only a well-formed username has a throttle record (its length is bounded); other attempts
  // cannot succeed and still cost one Argon2 verification below.
  bool valid = ValidateUsername(username, "username").ok();
  std::optional<LoginThrottle::Attempt> attempt;
  if (valid) {
    SUBMARINE_ASSIGN_OR_RETURN(LoginThrottle::Attempt admitted,
                               throttle_.Admit(username, clock_.Now()));
    attempt.emplace(std::move(admitted));
  }
  if (valid && password.size() <= kMaxPassword) {
    SUBMARINE_RETURN_IF_ERROR(pool_->Read(db::kNoDeadline, [&](pqxx::transaction_base& tx) {
      user = PermissionStore::FindUser(tx, username, false);
      return absl::OkStatus();
    }));
  }
  // Exactly one Argon2id verification on every path, outside any transaction.
  bool ok = false;
  if (user && !user->user.disabled()) {
    ok = auth::VerifyPassword(user->password_hash, password);
  } else {
    (void)auth::VerifyPassword(dummy_hash_, password);
  }
  if (!ok) {
    if (attempt) attempt->Failed(clock_.Now());
    return LoginFailed();
  }
  if (attempt) attempt->Succeeded();
  v1::LoginResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(resp, IssueTokens(tx, username));
    return absl::OkStatus();
  }));
  return resp;
}

absl::StatusOr<v1::LoginResponse> IdentityManager::Refresh(const std::string& refresh_token) {
  auto invalid = [] {
    return MakeError(absl::StatusCode::kUnauthenticated, "REFRESH_TOKEN_INVALID",
                     "the refresh token is invalid, expired or already used; log in again");
  };
  if (refresh_token.empty() || refresh_token.size() > 256) return invalid();
  std::string hash = auth::Sha256Hex(refresh_token);
  v1::LoginResponse resp;
  bool valid = false;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    valid = false;
    auto taken = PermissionStore::TakeRefreshToken(tx, hash);
    // An expired token is consumed (deleted) all the same.
    if (!taken || taken->second <= NowMicros()) return absl::OkStatus();
    auto issued = IssueTokens(tx, taken->first);
    if (!issued.ok()) return absl::OkStatus();
    resp = *std::move(issued);
    valid = true;
    return absl::OkStatus();
  }));
  if (!valid) return invalid();
  return resp;
}

absl::Status IdentityManager::Logout(const v1::LogoutRequest& req, const CallInfo& call) {
  if (req.refresh_token().size() > 256) {
    return InvalidField("refresh_token", "longer than 256 bytes");
  }
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (caller.username.empty()) {
      return InvalidField("principal", "only a user can log out");
    }
    if (!req.refresh_token().empty()) {
      auto taken = PermissionStore::TakeRefreshToken(tx, auth::Sha256Hex(req.refresh_token()));
      if (taken && taken->first != caller.username) {
        return InvalidField("refresh_token", "belongs to another user");  // rolls back
      }
    }
    const std::string& jti = call.principal.token_id();
    if (jti.empty() || call.principal.kind() != Principal::USER) return absl::OkStatus();
    if (jti.size() > 128) return InvalidField("principal.token_id", "longer than 128 bytes");
    int64_t now = NowMicros();
    // The calling token is an API token (revoke it for good) or an access token (revoked until
    // it would have expired anyway).
    int64_t expire = now + (options_.access_ttl_seconds + 60) * 1000000;
    auto api = PermissionStore::FindApiToken(tx, jti, true);
    if (api && api->username == caller.username) {
      expire = api->token.has_expire_time()
                   ? TimeUtil::TimestampToMicroseconds(api->token.expire_time())
                   : 0;
      PermissionStore::RevokeApiTokenRow(tx, jti, now);
    }
    PermissionStore::InsertRevokedToken(tx, jti, caller.username, expire, now);
    v1::TokenRevoked event;
    event.set_token_id(jti);
    event.set_user("users/" + caller.username);
    if (expire) *event.mutable_expire_time() = Ts(expire);
    return Publish(tx, event, event.user(), call);
  });
}

// ---- users

absl::StatusOr<v1::User> IdentityManager::GetCurrentUser(const CallInfo& call) {
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        if (caller.username.empty()) {
          return InvalidField("principal", "a service acting for itself has no user");
        }
        auto user = PermissionStore::FindUser(tx, caller.username, false);
        if (!user) return NotFound("user", "users/" + caller.username);
        out = user->user;
        FillTeams(tx, {&out});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::User> IdentityManager::GetUser(const v1::GetUserRequest& req,
                                                  const CallInfo& call) {
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        std::string username;
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name(), "name", &username));
        if (!caller.admin && !caller.is(username) &&
            !PermissionStore::ShareTeam(tx, caller.username, username)) {
          return Denied(req.name(), "reading a user who shares no team with you");
        }
        auto user = PermissionStore::FindUser(tx, username, false);
        if (!user) return NotFound("user", req.name());
        out = user->user;
        FillTeams(tx, {&out});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::ListUsersResponse> IdentityManager::ListUsers(const v1::ListUsersRequest& req,
                                                                 const CallInfo& call) {
  UserListQuery q;
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  SUBMARINE_RETURN_IF_ERROR(CheckText(req.filter(), "filter", 1024));
  SUBMARINE_ASSIGN_OR_RETURN(auto terms, api::ParseFilter(req.filter()));
  for (const auto& t : terms) {
    if (t.op != "=") return InvalidField("filter", "only \"=\" is supported");
    if (t.field == "name") {
      std::string v = t.value;
      bool prefix = !v.empty() && v.back() == '*';
      if (prefix) v.pop_back();
      if (v.rfind("users/", 0) == 0) v = v.substr(6);
      SUBMARINE_RETURN_IF_ERROR(CheckText(v, "filter", 63));
      if (prefix) {
        q.name_prefix = v;
      } else {
        q.name_equals = v;
      }
    } else if (t.field == "disabled" || t.field == "admin") {
      if (t.value != "true" && t.value != "false") {
        return InvalidField("filter", absl::StrCat(t.field, " is \"true\" or \"false\""));
      }
      (t.field == "disabled" ? q.disabled : q.admin) = t.value == "true";
    } else {
      return InvalidField("filter", absl::StrCat("cannot filter on ", Quote(t.field),
                                                 "; use name, disabled or admin"));
    }
  }
  uint64_t hash = api::QueryHash({"users", req.filter()});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  q.after_seq = token.after_id();
  const int page = q.limit;
  q.limit = page + 1;
  v1::ListUsersResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;  // every authenticated user may list usernames, to share with them
        auto rows = PermissionStore::ListUsers(tx, q);
        std::vector<v1::User*> filled;
        resp.set_next_page_token(api::TakePage(
            rows, page, hash,
            [&](const auto& r) {
              filled.push_back(resp.add_users());
              *filled.back() = r.user;
            },
            kAfterSeq));
        FillTeams(tx, filled);
        return absl::OkStatus();
      }));
  return resp;
}

absl::StatusOr<v1::User> IdentityManager::CreateUser(const v1::CreateUserRequest& req,
                                                     const CallInfo& call) {
  // Authorization first, then validation, then the slow hash outside the write transaction.
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        if (!caller.admin) return AdminOnly("users", "creating users");
        return absl::OkStatus();
      }));
  const std::string& id = req.user_id();
  if (id.empty()) return InvalidField("user_id", "is required");
  SUBMARINE_RETURN_IF_ERROR(ValidateUsername(id, "user_id"));
  std::string name = "users/" + id;
  if (!req.user().name().empty() && req.user().name() != name) {
    return InvalidField("user.name", "is output only on create (set user_id instead)");
  }
  SUBMARINE_RETURN_IF_ERROR(CheckText(req.user().display_name(), "user.display_name", 256));
  SUBMARINE_RETURN_IF_ERROR(CheckEmail(req.user().email(), "user.email"));
  SUBMARINE_RETURN_IF_ERROR(CheckPassword(req.password(), "password"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string hash,
                             auth::HashPassword(req.password(), options_.password_cost));
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.admin) return AdminOnly("users", "creating users");
    if (PermissionStore::FindUser(tx, id, false)) return AlreadyExists("user", name);
    int64_t now = NowMicros();
    out.set_name(name);
    out.set_display_name(req.user().display_name());
    out.set_email(req.user().email());
    out.set_disabled(req.user().disabled());
    out.set_admin(req.user().admin());
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_create_time() = Ts(now);
    *out.mutable_update_time() = Ts(now);
    try {
      PermissionStore::InsertUser(tx, id, out, hash);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("user", name);
    }
    return PublishUser(tx, out, v1::CREATED, call);
  }));
  return out;
}

absl::StatusOr<v1::User> IdentityManager::UpdateUser(const v1::UpdateUserRequest& req,
                                                     const CallInfo& call) {
  const v1::User& in = req.user();
  std::string username;
  SUBMARINE_RETURN_IF_ERROR(ParseUserName(in.name(), "user.name", &username));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto paths, MaskPaths(req.update_mask(), {"display_name", "email", "disabled", "admin"}));
  if (paths.empty()) {
    if (!in.display_name().empty()) paths.push_back("display_name");
    if (!in.email().empty()) paths.push_back("email");
    if (in.disabled()) paths.push_back("disabled");
    if (in.admin()) paths.push_back("admin");
  }
  std::set<std::string> set(paths.begin(), paths.end());
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.admin) {
      if (!caller.is(username)) return Denied(in.name(), "updating another user");
      if (set.count("disabled") || set.count("admin")) {
        return AdminOnly(in.name(), "changing the disabled or admin flag");
      }
    }
    if (set.count("display_name")) {
      SUBMARINE_RETURN_IF_ERROR(CheckText(in.display_name(), "user.display_name", 256));
    }
    if (set.count("email")) SUBMARINE_RETURN_IF_ERROR(CheckEmail(in.email(), "user.email"));
    auto found = PermissionStore::FindUser(tx, username, true);
    if (!found) return NotFound("user", in.name());
    if (!in.etag().empty() && in.etag() != found->user.etag()) return EtagMismatch(in.name());
    out = found->user;
    if (set.count("display_name")) out.set_display_name(in.display_name());
    if (set.count("email")) out.set_email(in.email());
    if (set.count("disabled")) out.set_disabled(in.disabled());
    if (set.count("admin")) out.set_admin(in.admin());
    bool was_active_admin = found->user.admin() && !found->user.disabled();
    bool is_active_admin = out.admin() && !out.disabled();
    if (was_active_admin && !is_active_admin &&
        PermissionStore::CountOtherActiveAdmins(tx, username) == 0) {
      return LastAdmin(username);
    }
    int64_t now = NowMicros();
    // A token states the admin flag it was issued with: tokens older than the change go.
    if (out.admin() != found->user.admin()) {
      PermissionStore::RaiseNotBefore(tx, username, CeilSecondMicros(now));
    }
    if (out.disabled() && !found->user.disabled()) {
      PermissionStore::DeleteRefreshTokensOf(tx, username);
    }
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_update_time() = Ts(now);
    PermissionStore::UpdateUser(tx, username, out);
    FillTeams(tx, {&out});
    return PublishUser(tx, out, v1::UPDATED, call);
  }));
  return out;
}

absl::Status IdentityManager::DeleteUser(const v1::DeleteUserRequest& req, const CallInfo& call) {
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.admin) return AdminOnly(req.name(), "deleting users");
    std::string username;
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name(), "name", &username));
    auto found = PermissionStore::FindUser(tx, username, true);
    if (!found) return NotFound("user", req.name());
    if (found->user.admin() && !found->user.disabled() &&
        PermissionStore::CountOtherActiveAdmins(tx, username) == 0) {
      return LastAdmin(username);
    }
    SUBMARINE_RETURN_IF_ERROR(CheckOwnsNothing(tx, req.name()));
    PermissionStore::DeleteAccessOf(tx, req.name());
    PermissionStore::DeleteUser(tx, username);  // memberships, API and refresh tokens cascade
    PermissionStore::RaiseNotBefore(tx, username, CeilSecondMicros(NowMicros()));
    return PublishUser(tx, found->user, v1::DELETED, call);
  });
}

absl::Status IdentityManager::SetPassword(const v1::SetPasswordRequest& req, const CallInfo& call) {
  std::string username;
  std::optional<UserRow> target;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name(), "name", &username));
        if (!caller.admin && !caller.is(username)) {
          return Denied(req.name(), "changing another user's password");
        }
        SUBMARINE_RETURN_IF_ERROR(CheckPassword(req.password(), "password"));
        target = PermissionStore::FindUser(tx, username, false);
        if (!target) return NotFound("user", req.name());
        if (caller.is(username)) {
          if (req.current_password().empty()) {
            return InvalidField("current_password", "is required to change your own password");
          }
          if (req.current_password().size() > kMaxPassword ||
              !auth::VerifyPassword(target->password_hash, req.current_password())) {
            return MakeError(absl::StatusCode::kPermissionDenied, "WRONG_PASSWORD",
                             "current_password: does not match", {{"field", "current_password"}});
          }
        }
        return absl::OkStatus();
      }));
  SUBMARINE_ASSIGN_OR_RETURN(std::string hash,
                             auth::HashPassword(req.password(), options_.password_cost));
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    auto found = PermissionStore::FindUser(tx, username, true);
    if (!found) return NotFound("user", req.name());
    int64_t now = NowMicros();
    PermissionStore::SetPasswordHash(tx, username, hash, now);
    PermissionStore::DeleteRefreshTokensOf(tx, username);
    PermissionStore::RaiseNotBefore(tx, username, CeilSecondMicros(now));
    *found->user.mutable_update_time() = Ts(now);
    return PublishUser(tx, found->user, v1::UPDATED, call);
  });
}

// ---- teams

absl::StatusOr<v1::Team> IdentityManager::CreateTeam(const v1::CreateTeamRequest& req,
                                                     const CallInfo& call) {
  const std::string& id = req.team_id();
  v1::Team out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (id.empty()) return InvalidField("team_id", "is required");
    SUBMARINE_RETURN_IF_ERROR(ValidateId(id, "team_id"));
    std::string name = "teams/" + id;
    if (!req.team().name().empty() && req.team().name() != name) {
      return InvalidField("team.name", "is output only on create (set team_id instead)");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckText(req.team().display_name(), "team.display_name", 256));
    SUBMARINE_RETURN_IF_ERROR(CheckText(req.team().description(), "team.description", 4096, true));
    if (PermissionStore::FindTeam(tx, id, false)) return AlreadyExists("team", name);
    out.set_name(name);
    out.set_display_name(req.team().display_name());
    out.set_description(req.team().description());
    *out.mutable_create_time() = Ts(NowMicros());
    try {
      PermissionStore::InsertTeam(tx, id, out);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("team", name);
    }
    if (!caller.username.empty()) {
      PermissionStore::UpsertMember(tx, id, caller.username, v1::OWNER);
      out.set_member_count(1);
    }
    return PublishTeam(tx, id, v1::CREATED,
                       caller.username.empty() ? "" : "users/" + caller.username, call);
  }));
  return out;
}

absl::StatusOr<v1::Team> IdentityManager::GetTeam(const v1::GetTeamRequest& req,
                                                  const CallInfo& call) {
  v1::Team out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;  // teams are visible to every user (to share with them)
        std::string id;
        SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.name(), "name", &id));
        auto team = PermissionStore::FindTeam(tx, id, false);
        if (!team) return NotFound("team", req.name());
        out = *team;
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::ListTeamsResponse> IdentityManager::ListTeams(const v1::ListTeamsRequest& req,
                                                                 const CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(
      int page, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  uint64_t hash = api::QueryHash({"teams"});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  v1::ListTeamsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;
        auto rows = PermissionStore::ListTeams(tx, token.after_id(), page + 1);
        resp.set_next_page_token(api::TakePage(
            rows, page, hash, [&](const auto& r) { *resp.add_teams() = r.second; },
            [](const auto& r, submarine::common::v1::PageToken* next) {
              next->set_after_id(r.first);
            }));
        return absl::OkStatus();
      }));
  return resp;
}

absl::Status IdentityManager::DeleteTeam(const v1::DeleteTeamRequest& req, const CallInfo& call) {
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string id;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.name(), "name", &id));
    if (!caller.admin && caller.TeamRole(id) != v1::OWNER) {
      return Denied(req.name(), "deleting a team (its owners only)");
    }
    if (!PermissionStore::FindTeam(tx, id, true)) return NotFound("team", req.name());
    SUBMARINE_RETURN_IF_ERROR(CheckOwnsNothing(tx, req.name()));
    PermissionStore::DeleteAccessOf(tx, req.name());
    PermissionStore::DeleteTeam(tx, id);
    return PublishTeam(tx, id, v1::DELETED, "", call);
  });
}

absl::StatusOr<v1::TeamMember> IdentityManager::SetTeamMember(const v1::SetTeamMemberRequest& req,
                                                              const CallInfo& call) {
  v1::TeamMember out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string team, user;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
    int mine = caller.admin ? v1::OWNER : caller.TeamRole(team);
    if (mine < v1::MAINTAINER) return Denied(req.team(), "managing members (maintainers only)");
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.member().user(), "member.user", &user));
    int role = req.member().role() == v1::TEAM_ROLE_UNSPECIFIED ? v1::MEMBER : req.member().role();
    if (role < v1::MEMBER || role > v1::OWNER) {
      return InvalidField("member.role", "is MEMBER, MAINTAINER or OWNER");
    }
    if (!PermissionStore::FindTeam(tx, team, true)) return NotFound("team", req.team());
    if (!PermissionStore::FindUser(tx, user, false)) return NotFound("user", req.member().user());
    auto current = PermissionStore::MemberRole(tx, team, user);
    bool changes_role = current && *current != role;
    if ((changes_role || role > v1::MEMBER) && mine < v1::OWNER) {
      return Denied(req.team(), "changing roles (owners only)");
    }
    if (current && *current == v1::OWNER && role < v1::OWNER &&
        PermissionStore::CountOwners(tx, team) <= 1) {
      return LastOwner(team);
    }
    PermissionStore::UpsertMember(tx, team, user, role);
    out.set_user("users/" + user);
    out.set_role(static_cast<v1::TeamRole>(role));
    return PublishTeam(tx, team, v1::UPDATED, out.user(), call);
  }));
  return out;
}

absl::Status IdentityManager::RemoveTeamMember(const v1::RemoveTeamMemberRequest& req,
                                               const CallInfo& call) {
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string team, user;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.user(), "user", &user));
    int mine = caller.admin ? v1::OWNER : caller.TeamRole(team);
    bool self = caller.is(user) && mine > 0;  // anyone may leave a team
    if (!self && mine < v1::MAINTAINER) {
      return Denied(req.team(), "removing members (maintainers only)");
    }
    if (!PermissionStore::FindTeam(tx, team, true)) return NotFound("team", req.team());
    auto current = PermissionStore::MemberRole(tx, team, user);
    if (!current) return NotFound("team member", req.user());
    if (!self && *current > v1::MEMBER && mine < v1::OWNER) {
      return Denied(req.team(), "removing a maintainer or owner (owners only)");
    }
    if (*current == v1::OWNER && PermissionStore::CountOwners(tx, team) <= 1) {
      return LastOwner(team);
    }
    PermissionStore::RemoveMember(tx, team, user);
    return PublishTeam(tx, team, v1::UPDATED, req.user(), call);
  });
}

absl::StatusOr<v1::ListTeamMembersResponse> IdentityManager::ListTeamMembers(
    const v1::ListTeamMembersRequest& req, const CallInfo& call) {
  v1::ListTeamMembersResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;
        std::string team;
        SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
        if (!PermissionStore::FindTeam(tx, team, false)) return NotFound("team", req.team());
        for (auto& m : PermissionStore::ListMembers(tx, team)) *resp.add_members() = std::move(m);
        return absl::OkStatus();
      }));
  return resp;
}

// ---- projects

absl::StatusOr<v1::Project> IdentityManager::CreateProject(const v1::CreateProjectRequest& req,
                                                           const CallInfo& call) {
  const std::string& id = req.project_id();
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (id.empty()) return InvalidField("project_id", "is required");
    SUBMARINE_RETURN_IF_ERROR(ValidateId(id, "project_id"));
    std::string name = "projects/" + id;
    const v1::Project& in = req.project();
    if (!in.name().empty() && in.name() != name) {
      return InvalidField("project.name", "is output only on create (set project_id instead)");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckText(in.display_name(), "project.display_name", 256));
    SUBMARINE_RETURN_IF_ERROR(CheckText(in.description(), "project.description", 4096, true));
    std::string owner = in.owner();
    if (owner.empty()) {
      if (caller.username.empty()) {
        return InvalidField("project.owner", "is required when a service creates a project");
      }
      owner = "users/" + caller.username;
    }
    SUBMARINE_RETURN_IF_ERROR(CheckOwner(tx, caller, owner, "project.owner"));
    if (PermissionStore::FindProject(tx, id, false)) return AlreadyExists("project", name);
    int64_t now = NowMicros();
    out.set_name(name);
    out.set_display_name(in.display_name());
    out.set_description(in.description());
    out.set_owner(owner);
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_create_time() = Ts(now);
    *out.mutable_update_time() = Ts(now);
    try {
      PermissionStore::InsertProject(tx, id, out);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("project", name);
    }
    return PublishProject(tx, out, v1::CREATED, call);
  }));
  return out;
}

absl::StatusOr<v1::Project> IdentityManager::GetProject(const v1::GetProjectRequest& req,
                                                        const CallInfo& call) {
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        ResourceRef ref;
        SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.name(), "name", &ref.project));
        SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.name(), v1::READ));
        auto found = PermissionStore::FindProject(tx, ref.project, false);
        if (!found) return NotFound("project", req.name());
        out = found->project;
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::ListProjectsResponse> IdentityManager::ListProjects(
    const v1::ListProjectsRequest& req, const CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(
      int page, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  v1::ListProjectsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        // The token is bound to who asked: another caller's page boundaries mean nothing here.
        uint64_t hash = api::QueryHash({"projects", caller.actor});
        SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
        std::vector<std::string> owners;
        if (!caller.username.empty()) owners.push_back("users/" + caller.username);
        for (const auto& [team, role] : caller.teams) owners.push_back("teams/" + team);
        auto rows = PermissionStore::ListProjects(tx, caller.admin, owners, caller.Subjects(),
                                                  token.after_id(), page + 1);
        resp.set_next_page_token(api::TakePage(
            rows, page, hash, [&](const auto& r) { *resp.add_projects() = r.project; }, kAfterSeq));
        return absl::OkStatus();
      }));
  return resp;
}

absl::StatusOr<v1::Project> IdentityManager::UpdateProject(const v1::UpdateProjectRequest& req,
                                                           const CallInfo& call) {
  const v1::Project& in = req.project();
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseProjectName(in.name(), "project.name", &ref.project));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, in.name(), v1::ADMIN));
    SUBMARINE_ASSIGN_OR_RETURN(
        auto paths, MaskPaths(req.update_mask(), {"display_name", "description", "owner"}));
    if (paths.empty()) {
      if (!in.display_name().empty()) paths.push_back("display_name");
      if (!in.description().empty()) paths.push_back("description");
      if (!in.owner().empty()) paths.push_back("owner");
    }
    auto found = PermissionStore::FindProject(tx, ref.project, true);
    if (!found) return NotFound("project", in.name());
    if (!in.etag().empty() && in.etag() != found->project.etag()) return EtagMismatch(in.name());
    out = found->project;
    for (const auto& p : paths) {
      if (p == "display_name") {
        SUBMARINE_RETURN_IF_ERROR(CheckText(in.display_name(), "project.display_name", 256));
        out.set_display_name(in.display_name());
      } else if (p == "description") {
        SUBMARINE_RETURN_IF_ERROR(CheckText(in.description(), "project.description", 4096, true));
        out.set_description(in.description());
      } else if (p == "owner") {
        if (in.owner() != out.owner()) {
          SUBMARINE_RETURN_IF_ERROR(CheckOwner(tx, caller, in.owner(), "project.owner"));
        }
        out.set_owner(in.owner());
      }
    }
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_update_time() = Ts(NowMicros());
    PermissionStore::UpdateProject(tx, ref.project, out);
    return PublishProject(tx, out, v1::UPDATED, call);
  }));
  return out;
}

absl::Status IdentityManager::DeleteProject(const v1::DeleteProjectRequest& req,
                                            const CallInfo& call) {
  return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.name(), "name", &ref.project));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.name(), v1::ADMIN));
    auto found = PermissionStore::FindProject(tx, ref.project, true);
    if (!found) return NotFound("project", req.name());
    PermissionStore::DeleteProject(tx, ref.project);  // bindings and grants cascade
    return PublishProject(tx, found->project, v1::DELETED, call);
  });
}

// ---- API tokens

absl::StatusOr<v1::CreateApiTokenResponse> IdentityManager::CreateApiToken(
    const v1::CreateApiTokenRequest& req, const CallInfo& call) {
  v1::CreateApiTokenResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string username;
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.parent(), "parent", &username));
    if (!caller.admin && !caller.is(username)) {
      return Denied(req.parent(), "creating tokens for another user");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckText(req.display_name(), "display_name", 256));
    if (req.ttl_seconds() < 0 || req.ttl_seconds() > kMaxApiTokenTtl) {
      return InvalidField("ttl_seconds", "is 0 (no expiry) up to ten years");
    }
    auto user = PermissionStore::FindUser(tx, username, false);
    if (!user) return NotFound("user", req.parent());
    if (user->user.disabled()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "USER_DISABLED",
                       absl::StrCat("user \"", username, "\" is disabled"), {{"user", username}});
    }
    int64_t now = NowMicros();
    auth::TokenClaims claims;
    claims.issuer = options_.issuer;
    claims.subject = username;
    claims.token_id = ids_.RandomHex(16);
    claims.kind = "api";
    for (const auto& m : PermissionStore::Memberships(tx, {username})) {
      claims.teams.push_back(m.team_id);
    }
    claims.admin = user->user.admin();
    claims.issued_at = std::max(now / 1000000, PermissionStore::NotBefore(tx, username) / 1000000);
    if (req.ttl_seconds() > 0) claims.expires_at = claims.issued_at + req.ttl_seconds();
    std::string jwt = auth::SignJwt(claims, options_.signing_key);
    ApiTokenRow row;
    row.username = username;
    row.token_hash = auth::Sha256Hex(jwt);
    row.token.set_name(absl::StrCat(req.parent(), "/tokens/", claims.token_id));
    row.token.set_display_name(req.display_name());
    *row.token.mutable_create_time() = Ts(now);
    if (claims.expires_at) *row.token.mutable_expire_time() = Ts(claims.expires_at * 1000000);
    PermissionStore::InsertApiToken(tx, row);
    *resp.mutable_token() = row.token;
    resp.set_secret(jwt);
    return absl::OkStatus();
  }));
  return resp;
}

absl::StatusOr<v1::ListApiTokensResponse> IdentityManager::ListApiTokens(
    const v1::ListApiTokensRequest& req, const CallInfo& call) {
  v1::ListApiTokensResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        std::string username;
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.parent(), "parent", &username));
        if (!caller.admin && !caller.is(username)) {
          return Denied(req.parent(), "listing another user's tokens");
        }
        if (!PermissionStore::FindUser(tx, username, false)) return NotFound("user", req.parent());
        for (auto& row : PermissionStore::ListApiTokens(tx, username)) {
          *resp.add_tokens() = std::move(row.token);
        }
        return absl::OkStatus();
      }));
  return resp;
}

absl::StatusOr<v1::ApiToken> IdentityManager::RevokeApiToken(const v1::RevokeApiTokenRequest& req,
                                                             const CallInfo& call) {
  v1::ApiToken out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    auto slash = req.name().find("/tokens/");
    if (slash == std::string::npos) {
      return InvalidField("name", absl::StrCat("expected \"users/{user}/tokens/{token}\", got ",
                                               Quote(req.name())));
    }
    std::string username, token_id = req.name().substr(slash + 8);
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name().substr(0, slash), "name", &username));
    bool hex = !token_id.empty() && token_id.size() <= 64;
    for (char c : token_id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) return InvalidField("name", "token ids are lower-case hex");
    if (!caller.admin && !caller.is(username)) {
      return Denied(req.name(), "revoking another user's token");
    }
    auto found = PermissionStore::FindApiToken(tx, token_id, true);
    if (!found || found->username != username) return NotFound("API token", req.name());
    out = found->token;
    if (out.has_revoke_time()) return absl::OkStatus();  // already revoked: nothing changes
    int64_t now = NowMicros();
    PermissionStore::RevokeApiTokenRow(tx, token_id, now);
    int64_t expire =
        out.has_expire_time() ? TimeUtil::TimestampToMicroseconds(out.expire_time()) : 0;
    PermissionStore::InsertRevokedToken(tx, token_id, username, expire, now);
    *out.mutable_revoke_time() = Ts(now);
    v1::TokenRevoked event;
    event.set_token_id(token_id);
    event.set_user("users/" + username);
    if (out.has_expire_time()) *event.mutable_expire_time() = out.expire_time();
    return Publish(tx, event, req.name(), call);
  }));
  return out;
}

absl::StatusOr<v1::AuthState> IdentityManager::GetAuthState(const CallInfo& call) {
  v1::AuthState state;
  state.set_issuer(options_.issuer);
  auto* key = state.add_signing_keys();
  key->set_key_id(options_.signing_key.key_id);
  key->set_public_key(options_.signing_key.public_key);
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    (void)caller;  // internal_only: the interceptor admitted a SERVICE principal
    for (const auto& [id, expire] : PermissionStore::RevokedTokens(tx, NowMicros())) {
      auto* r = state.add_revoked_tokens();
      r->set_token_id(id);
      if (expire) *r->mutable_expire_time() = Ts(expire);
    }
    for (auto& u : PermissionStore::BlockedUsers(tx)) state.add_blocked_users(std::move(u));
    for (const auto& [user, micros] : PermissionStore::NotBefores(tx)) {
      (*state.mutable_not_before())[user] = Ts(micros);
    }
    return absl::OkStatus();
  }));
  return state;
}

absl::StatusOr<int64_t> IdentityManager::PruneExpired() {
  int64_t n = 0;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    n = PermissionStore::PruneExpired(tx, NowMicros());
    return absl::OkStatus();
  }));
  return n;
}

}  // namespace submarine::permission
