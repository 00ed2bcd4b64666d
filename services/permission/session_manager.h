#pragma once
// SessionManager issues and ends every token of the permission service: password logins, refresh
// token rotation, logout, API tokens (created, listed and revoked here, because issuing and
// revoking tokens share the signing key, the not-before rule and the TokenRevoked event), the
// AuthState the gateway verifies tokens with, and the housekeeping that forgets expired refresh
// tokens and revocations. Users' accounts themselves are UserManager's.
//
// Every token change writes its event in the same transaction as the change, so the gateway
// re-fetches its AuthState after anything that affects token validity. Who may do what is
// decided by ResolveCaller/Caller (access_evaluator.h). Speaks protos and absl::Status.
// Thread-safe (stateless apart from the pool, the options and the shared throttle and hasher).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/auth/crypto.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/login_throttle.h"
#include "services/permission/password_hasher.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

struct SessionOptions {
  auth::SigningKey signing_key;
  std::string issuer = "submarine";
  int64_t access_ttl_seconds = 900;
  int64_t refresh_ttl_seconds = 604800;
};

class SessionManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock`, `ids`, `throttle`
  // and `hasher` must outlive the manager; `throttle` and `hasher` are shared with UserManager.
  // INTERNAL if the dummy password hash (checked against unknown users) cannot be computed.
  static absl::StatusOr<std::unique_ptr<SessionManager>> Create(
      db::ConnectionPool* pool, const api::Idempotency* idempotency, SessionOptions options,
      const Clock& clock, IdGenerator& ids, LoginThrottle* throttle, PasswordHasher* hasher);

  // Login and Refresh failures are UNAUTHENTICATED with reasons LOGIN_FAILED and
  // REFRESH_TOKEN_INVALID and the same message whatever the cause. Login costs exactly one
  // Argon2id verification (through the hasher, no database connection held meanwhile) whether or
  // not the user exists, and is throttled per username: RESOURCE_EXHAUSTED, reason
  // LOGIN_THROTTLED, while a delay runs; the hasher's refusals (DEADLINE_EXCEEDED,
  // RESOURCE_EXHAUSTED PASSWORD_WORK_BUSY) count as no attempt.
  absl::StatusOr<v1::LoginResponse> Login(const std::string& username, const std::string& password,
                                          const CallInfo& call);
  absl::StatusOr<v1::LoginResponse> Refresh(const std::string& refresh_token, const CallInfo& call);
  // Revokes the calling token and (if given) the caller's refresh token. INVALID_ARGUMENT naming
  // "principal" for a service acting for itself, "refresh_token" for another user's token.
  absl::Status Logout(const v1::LogoutRequest& request, const CallInfo& call);

  // API tokens of users/u: u and admins only.
  absl::StatusOr<v1::CreateApiTokenResponse> CreateApiToken(
      const v1::CreateApiTokenRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListApiTokensResponse> ListApiTokens(const v1::ListApiTokensRequest& request,
                                                          const CallInfo& call);
  absl::StatusOr<v1::ApiToken> RevokeApiToken(const v1::RevokeApiTokenRequest& request,
                                              const CallInfo& call);

  // Keys, revocations, blocked users and not-before instants, for the gateway. The method is
  // internal_only (the interceptor admits only SERVICE principals).
  absl::StatusOr<v1::AuthState> GetAuthState(const CallInfo& call);

  // Housekeeping: forgets expired refresh tokens and revocations; returns how many.
  absl::StatusOr<int64_t> PruneExpired();

  const SessionOptions& options() const { return options_; }

 private:
  SessionManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, SessionOptions options,
                 const Clock& clock, IdGenerator& ids, LoginThrottle* throttle,
                 PasswordHasher* hasher)
      : pool_(pool),
        idempotency_(idempotency),
        options_(std::move(options)),
        clock_(clock),
        ids_(ids),
        throttle_(throttle),
        hasher_(hasher) {}

  // Claims of a new token of `kind` ("access", "api") for `user` (teams filled), issued at
  // `now_micros` or the user's not-before (read in `tx`), whichever is later; no expiry set.
  auth::TokenClaims NewClaims(pqxx::transaction_base& tx, const v1::User& user,
                              const std::string& kind, int64_t now_micros);
  // Issues an access token and a refresh token for `username` inside `tx`; LOGIN_FAILED if the
  // user is gone or disabled.
  absl::StatusOr<v1::LoginResponse> IssueTokens(pqxx::work& tx, const std::string& username);

  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  SessionOptions options_;
  const Clock& clock_;
  IdGenerator& ids_;
  LoginThrottle* throttle_;
  PasswordHasher* hasher_;
  std::string dummy_hash_;
};

// UNAUTHENTICATED, reason LOGIN_FAILED: the one answer to every failed login.
absl::Status LoginFailed();

}  // namespace submarine::permission
