#pragma once
// IdentityManager decides everything about users, teams, projects and tokens: who may do what
// (from the database, see access_evaluator.h), validation (every error names its field), login
// and token issuing, and the event each change publishes (written to the outbox in the same
// transaction as the change, so the gateway re-fetches its AuthState after anything that
// affects token validity). Speaks protos and absl::Status. Thread-safe (stateless apart from
// the pool, the immutable options and the login throttle).

#include <string>

#include "absl/status/statusor.h"
#include "common/auth/crypto.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/login_throttle.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

struct IdentityOptions {
  auth::SigningKey signing_key;
  std::string issuer = "submarine";
  int64_t access_ttl_seconds = 900;
  int64_t refresh_ttl_seconds = 604800;
  auth::PasswordCost password_cost;
  // Bootstrap writes the generated admin password here (0600).
  std::string admin_password_file;
  LoginThrottle::Options login_throttle;
};

class IdentityManager {
 public:
  // `pool` must outlive the manager; its connections must have PermissionStore::Prepare run.
  // INTERNAL if the dummy password hash (used against unknown users) cannot be computed.
  static absl::StatusOr<std::unique_ptr<IdentityManager>> Create(db::ConnectionPool* pool,
                                                                 IdentityOptions options,
                                                                 const Clock& clock,
                                                                 IdGenerator& ids);

  // First start of an empty schema (serialized between replicas by an advisory lock): creates
  // user "admin" with a random password written 0600 to admin_password_file, and project
  // "default" owned by users/admin with allUsers → VIEWER. Never again afterwards. Sets
  // *created when this call did it.
  absl::Status Bootstrap(bool* created = nullptr);

  // ---- authentication. Login/Refresh failures are UNAUTHENTICATED with reasons LOGIN_FAILED /
  // REFRESH_TOKEN_INVALID and the same message whatever the cause. Login is throttled per
  // username (LoginThrottle): RESOURCE_EXHAUSTED, reason LOGIN_THROTTLED, while a delay runs.
  absl::StatusOr<v1::LoginResponse> Login(const std::string& username,
                                          const std::string& password);
  absl::StatusOr<v1::LoginResponse> Refresh(const std::string& refresh_token);
  absl::Status Logout(const v1::LogoutRequest& request, const CallInfo& call);

  // ---- users
  absl::StatusOr<v1::User> GetCurrentUser(const CallInfo& call);
  absl::StatusOr<v1::User> GetUser(const v1::GetUserRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListUsersResponse> ListUsers(const v1::ListUsersRequest& request,
                                                  const CallInfo& call);
  absl::StatusOr<v1::User> CreateUser(const v1::CreateUserRequest& request, const CallInfo& call);
  absl::StatusOr<v1::User> UpdateUser(const v1::UpdateUserRequest& request, const CallInfo& call);
  absl::Status DeleteUser(const v1::DeleteUserRequest& request, const CallInfo& call);
  absl::Status SetPassword(const v1::SetPasswordRequest& request, const CallInfo& call);

  // ---- teams
  absl::StatusOr<v1::Team> CreateTeam(const v1::CreateTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::Team> GetTeam(const v1::GetTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListTeamsResponse> ListTeams(const v1::ListTeamsRequest& request,
                                                  const CallInfo& call);
  absl::Status DeleteTeam(const v1::DeleteTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::TeamMember> SetTeamMember(const v1::SetTeamMemberRequest& request,
                                               const CallInfo& call);
  absl::Status RemoveTeamMember(const v1::RemoveTeamMemberRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListTeamMembersResponse> ListTeamMembers(
      const v1::ListTeamMembersRequest& request, const CallInfo& call);

  // ---- projects
  absl::StatusOr<v1::Project> CreateProject(const v1::CreateProjectRequest& request,
                                            const CallInfo& call);
  absl::StatusOr<v1::Project> GetProject(const v1::GetProjectRequest& request,
                                         const CallInfo& call);
  absl::StatusOr<v1::ListProjectsResponse> ListProjects(const v1::ListProjectsRequest& request,
                                                        const CallInfo& call);
  absl::StatusOr<v1::Project> UpdateProject(const v1::UpdateProjectRequest& request,
                                            const CallInfo& call);
  absl::Status DeleteProject(const v1::DeleteProjectRequest& request, const CallInfo& call);

  // ---- API tokens
  absl::StatusOr<v1::CreateApiTokenResponse> CreateApiToken(
      const v1::CreateApiTokenRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListApiTokensResponse> ListApiTokens(const v1::ListApiTokensRequest& request,
                                                          const CallInfo& call);
  absl::StatusOr<v1::ApiToken> RevokeApiToken(const v1::RevokeApiTokenRequest& request,
                                              const CallInfo& call);

  // For the gateway. The method is internal_only (the interceptor admits only SERVICE
  // principals).
  absl::StatusOr<v1::AuthState> GetAuthState(const CallInfo& call);

  // Housekeeping: forgets expired refresh tokens and revocations; returns how many.
  absl::StatusOr<int64_t> PruneExpired();

  const IdentityOptions& options() const { return options_; }

 private:
  IdentityManager(db::ConnectionPool* pool, IdentityOptions options, const Clock& clock,
                  IdGenerator& ids)
      : pool_(pool),
        options_(std::move(options)),
        clock_(clock),
        ids_(ids),
        throttle_(options_.login_throttle) {}

  int64_t NowMicros() const;
  // Issues an access token and a refresh token for `username` inside `tx`.
  absl::StatusOr<v1::LoginResponse> IssueTokens(pqxx::work& tx, const std::string& username);

  db::ConnectionPool* pool_;
  IdentityOptions options_;
  const Clock& clock_;
  IdGenerator& ids_;
  std::string dummy_hash_;
  LoginThrottle throttle_;
};

// Reasons of authentication failures.
absl::Status LoginFailed();

}  // namespace submarine::permission
