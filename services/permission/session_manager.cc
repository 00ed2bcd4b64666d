#include "services/permission/session_manager.h"

#include <google/protobuf/empty.pb.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "services/permission/identity_rules.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int64_t kMaxApiTokenTtl = int64_t{10} * 366 * 24 * 3600;
constexpr int64_t kMaxScopedTokenTtl = int64_t{30} * 24 * 3600;

}  // namespace

absl::Status LoginFailed() {
  return MakeError(absl::StatusCode::kUnauthenticated, "LOGIN_FAILED",
                   "invalid username or password");
}

absl::StatusOr<std::unique_ptr<SessionManager>> SessionManager::Create(
    db::ConnectionPool* pool, const api::Idempotency* idempotency, SessionOptions options,
    const Clock& clock, IdGenerator& ids, LoginThrottle* throttle, PasswordHasher* hasher) {
  std::unique_ptr<SessionManager> m(
      new SessionManager(pool, idempotency, std::move(options), clock, ids, throttle, hasher));
  // Verified against when the user is unknown or disabled, so a failed login costs the same
  // whether or not the user exists.
  SUBMARINE_ASSIGN_OR_RETURN(m->dummy_hash_, hasher->Hash(auth::RandomToken(16), db::kNoDeadline));
  return m;
}

auth::TokenClaims SessionManager::NewClaims(pqxx::transaction_base& tx, const v1::User& user,
                                            const std::string& kind, int64_t now_micros) {
  const std::string username = user.name().substr(6);
  auth::TokenClaims claims;
  claims.issuer = options_.issuer;
  claims.subject = username;
  claims.token_id = ids_.RandomHex(16);
  claims.kind = kind;
  for (const auto& t : user.teams()) claims.teams.push_back(t.substr(6));
  claims.admin = user.admin();
  // Never before the user's not-before (identity_rules.h, CeilSecondMicros).
  claims.issued_at =
      std::max(now_micros / 1000000, PermissionStore::NotBefore(tx, username) / 1000000);
  return claims;
}

absl::StatusOr<v1::LoginResponse> SessionManager::IssueTokens(pqxx::work& tx,
                                                              const std::string& username) {
  auto user = PermissionStore::FindUser(tx, username, false);
  if (!user || user->user.disabled()) return LoginFailed();
  v1::LoginResponse resp;
  *resp.mutable_user() = user->user;
  FillTeams(tx, {resp.mutable_user()});
  int64_t now = NowMicros(clock_);
  auth::TokenClaims claims = NewClaims(tx, resp.user(), "access", now);
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

absl::StatusOr<v1::LoginResponse> SessionManager::Login(const std::string& username,
                                                        const std::string& password,
                                                        const CallInfo& call) {
  std::optional<UserRow> user;
  // Only a well-formed username has a throttle record (its length is bounded); other attempts
  // cannot succeed and still cost one Argon2 verification below.
  bool valid = ValidateUsername(username, "username").ok();
  std::optional<LoginThrottle::Attempt> attempt;
  if (valid) {
    SUBMARINE_ASSIGN_OR_RETURN(LoginThrottle::Attempt admitted,
                               throttle_->Admit(username, clock_.Now()));
    attempt.emplace(std::move(admitted));
  }
  if (valid && password.size() <= kMaxPassword) {
    SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
      user = PermissionStore::FindUser(tx, username, false);
      return absl::OkStatus();
    }));
  }
  // Exactly one Argon2id verification on every path, with no connection held.
  bool known = user && !user->user.disabled();
  SUBMARINE_ASSIGN_OR_RETURN(
      bool ok, hasher_->Verify(known ? user->password_hash : dummy_hash_, password, call.deadline));
  if (!ok || !known) {
    if (attempt) attempt->Failed(clock_.Now());
    return LoginFailed();
  }
  attempt->Succeeded();
  v1::LoginResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(resp, IssueTokens(tx, username));
    return absl::OkStatus();
  }));
  return resp;
}

absl::StatusOr<v1::LoginResponse> SessionManager::Refresh(const std::string& refresh_token,
                                                          const CallInfo& call) {
  auto invalid = [] {
    return MakeError(absl::StatusCode::kUnauthenticated, "REFRESH_TOKEN_INVALID",
                     "the refresh token is invalid, expired or already used; log in again");
  };
  if (refresh_token.empty() || refresh_token.size() > 256) return invalid();
  std::string hash = auth::Sha256Hex(refresh_token);
  v1::LoginResponse resp;
  bool valid = false;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    valid = false;
    auto taken = PermissionStore::TakeRefreshToken(tx, hash);
    // An expired token is consumed (deleted) all the same.
    if (!taken || taken->second <= NowMicros(clock_)) return absl::OkStatus();
    auto issued = IssueTokens(tx, taken->first);
    if (!issued.ok()) return absl::OkStatus();
    resp = *std::move(issued);
    valid = true;
    return absl::OkStatus();
  }));
  if (!valid) return invalid();
  return resp;
}

absl::Status SessionManager::Logout(const v1::LogoutRequest& req, const CallInfo& call) {
  if (req.refresh_token().size() > 256) {
    return InvalidField("refresh_token", "longer than 256 bytes");
  }
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "Logout", req, req.request_id(), &done, [&](pqxx::work& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        SUBMARINE_RETURN_IF_ERROR(caller.RequireUser("logging out"));
        if (!req.refresh_token().empty()) {
          auto taken = PermissionStore::TakeRefreshToken(tx, auth::Sha256Hex(req.refresh_token()));
          if (taken && taken->first != caller.username) {
            return InvalidField("refresh_token", "belongs to another user");  // rolls back
          }
        }
        // The calling token: only a USER principal carries the id of the token it came with.
        const std::string& jti = call.principal.token_id();
        if (jti.empty() || caller.service) return absl::OkStatus();
        if (jti.size() > 128) return InvalidField("principal.token_id", "longer than 128 bytes");
        int64_t now = NowMicros(clock_);
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

// ---- API tokens

absl::StatusOr<v1::CreateApiTokenResponse> SessionManager::CreateApiToken(
    const v1::CreateApiTokenRequest& req, const CallInfo& call) {
  v1::CreateApiTokenResponse resp;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateApiToken", req, req.request_id(), &resp,
      [&](pqxx::work& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        std::string username;
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.parent(), "parent", &username));
        if (!caller.MayManageUser(username)) {
          return Denied(req.parent(), "creating tokens for another user");
        }
        SUBMARINE_RETURN_IF_ERROR(CheckText(req.display_name(), "display_name", 256));
        if (req.ttl_seconds() < 0 || req.ttl_seconds() > kMaxApiTokenTtl) {
          return InvalidField("ttl_seconds", "is 0 (no expiry) up to ten years");
        }
        if (!req.scope().empty()) {
          std::string project;
          SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.scope(), "scope", &project));
          if (req.ttl_seconds() == 0 || req.ttl_seconds() > kMaxScopedTokenTtl) {
            return InvalidField("ttl_seconds", "a scoped token lives 1 s up to 30 days");
          }
        }
        auto user = PermissionStore::FindUser(tx, username, false);
        if (!user) return NotFound("user", req.parent());
        if (user->user.disabled()) {
          return MakeError(absl::StatusCode::kFailedPrecondition, "USER_DISABLED",
                           absl::StrCat("user \"", username, "\" is disabled"),
                           {{"user", username}});
        }
        int64_t now = NowMicros(clock_);
        FillTeams(tx, {&user->user});
        auth::TokenClaims claims = NewClaims(tx, user->user, "api", now);
        if (req.ttl_seconds() > 0) claims.expires_at = claims.issued_at + req.ttl_seconds();
        claims.scope = req.scope();
        std::string jwt = auth::SignJwt(claims, options_.signing_key);
        ApiTokenRow row;
        row.username = username;
        row.token_hash = auth::Sha256Hex(jwt);
        row.token.set_name(absl::StrCat(req.parent(), "/tokens/", claims.token_id));
        row.token.set_display_name(req.display_name());
        row.token.set_scope(req.scope());
        *row.token.mutable_create_time() = Ts(now);
        if (claims.expires_at) *row.token.mutable_expire_time() = Ts(claims.expires_at * 1000000);
        PermissionStore::InsertApiToken(tx, row);
        *resp.mutable_token() = row.token;
        resp.set_secret(jwt);
        return absl::OkStatus();
      }));
  return resp;
}

absl::StatusOr<v1::ListApiTokensResponse> SessionManager::ListApiTokens(
    const v1::ListApiTokensRequest& req, const CallInfo& call) {
  v1::ListApiTokensResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        std::string username;
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.parent(), "parent", &username));
        if (!caller.MayManageUser(username)) {
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

absl::StatusOr<v1::ApiToken> SessionManager::RevokeApiToken(const v1::RevokeApiTokenRequest& req,
                                                            const CallInfo& call) {
  v1::ApiToken out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "RevokeApiToken", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
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
        if (!caller.MayManageUser(username)) {
          return Denied(req.name(), "revoking another user's token");
        }
        auto found = PermissionStore::FindApiToken(tx, token_id, true);
        if (!found || found->username != username) return NotFound("API token", req.name());
        out = found->token;
        if (out.has_revoke_time()) return absl::OkStatus();  // already revoked: nothing changes
        int64_t now = NowMicros(clock_);
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

absl::StatusOr<v1::AuthState> SessionManager::GetAuthState(const CallInfo& call) {
  v1::AuthState state;
  state.set_issuer(options_.issuer);
  auto* key = state.add_signing_keys();
  key->set_key_id(options_.signing_key.key_id);
  key->set_public_key(options_.signing_key.public_key);
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;  // internal_only: the interceptor admitted a SERVICE principal
        for (const auto& [id, expire] : PermissionStore::RevokedTokens(tx, NowMicros(clock_))) {
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

absl::StatusOr<int64_t> SessionManager::PruneExpired() {
  int64_t n = 0;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    n = PermissionStore::PruneExpired(tx, NowMicros(clock_));
    return absl::OkStatus();
  }));
  return n;
}

}  // namespace submarine::permission
