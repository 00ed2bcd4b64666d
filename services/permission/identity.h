#pragma once
// The identity part of the permission service, built from one IdentityOptions: the sessions
// (login, refresh, logout, API tokens, auth state), users, teams and projects classes, and the
// two things they share — the login throttle (so password guesses through Login and
// SetPassword spend one budget per username) and the process-wide PasswordHasher that bounds
// concurrent Argon2 work. It owns them all; the parts are destroyed in reverse order of
// construction. Bootstrap() prepares an empty installation. Thread-safe after Create.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/login_throttle.h"
#include "services/permission/password_hasher.h"
#include "services/permission/project_manager.h"
#include "services/permission/session_manager.h"
#include "services/permission/team_manager.h"
#include "services/permission/user_manager.h"

namespace submarine::permission {

struct IdentityOptions {
  SessionOptions sessions;
  // Argon2id cost and how many hashes may run at once (PasswordHasher::Options).
  PasswordHasher::Options passwords;
  LoginThrottle::Options login_throttle;
  // Bootstrap writes the generated admin password here (0600).
  std::string admin_password_file;
  // What a project still holds elsewhere (ProjectManager); empty: no check.
  ProjectHoldings project_holdings;
};

class Identity {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock` and `ids` must
  // outlive it. INTERNAL if the dummy password hash cannot be computed.
  // `idempotency` (request ids of every mutation, sealed: answers hold tokens) must outlive it.
  static absl::StatusOr<std::unique_ptr<Identity>> Create(db::ConnectionPool* pool,
                                                          const api::Idempotency* idempotency,
                                                          IdentityOptions options,
                                                          const Clock& clock, IdGenerator& ids);

  // First start of an empty schema (serialized between replicas by an advisory lock): creates
  // user "admin" with a random password written 0600 to admin_password_file, and project
  // "default" owned by users/admin with allUsers → VIEWER. Never again afterwards. Sets
  // *created when this call did it.
  absl::Status Bootstrap(bool* created = nullptr);

  SessionManager& sessions() { return *sessions_; }
  UserManager& users() { return *users_; }
  TeamManager& teams() { return *teams_; }
  ProjectManager& projects() { return *projects_; }
  LoginThrottle& throttle() { return throttle_; }
  PasswordHasher& hasher() { return hasher_; }

 private:
  Identity(db::ConnectionPool* pool, IdentityOptions options, const Clock& clock, IdGenerator& ids);

  db::ConnectionPool* pool_;
  const std::string admin_password_file_;
  const Clock& clock_;
  IdGenerator& ids_;
  LoginThrottle throttle_;
  PasswordHasher hasher_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<UserManager> users_;
  std::unique_ptr<TeamManager> teams_;
  std::unique_ptr<ProjectManager> projects_;
};

}  // namespace submarine::permission
