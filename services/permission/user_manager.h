#pragma once
// UserManager decides everything about user accounts: reading and listing them, creating,
// updating and deleting them (admins; users may edit their own display name and e-mail), and
// passwords. Who may do what comes from ResolveCaller/Caller (access_evaluator.h); every error
// names its field; each change writes its UserChanged event in the same transaction, and a
// change that affects tokens (admin flag, password, deletion) raises the user's not-before so
// earlier tokens stop working.
//
// Passwords: Argon2id work goes through the shared PasswordHasher and never runs while a
// database connection is held: a change reads what it needs in one short transaction, hashes
// or verifies with no connection, then writes in a second transaction. Changing one's own
// password needs the current one, and those checks take their attempts from the shared
// LoginThrottle, so guesses through SetPassword and through Login share one budget per
// username. Thread-safe.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/login_throttle.h"
#include "services/permission/password_hasher.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class UserManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock`, `ids`, `throttle`
  // and `hasher` must outlive the manager.
  UserManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, const Clock& clock,
              IdGenerator& ids, LoginThrottle* throttle, PasswordHasher* hasher)
      : pool_(pool),
        idempotency_(idempotency),
        clock_(clock), ids_(ids), throttle_(throttle), hasher_(hasher) {}

  // The calling user with their teams; INVALID_ARGUMENT naming "principal" for a service acting
  // for itself.
  absl::StatusOr<v1::User> GetCurrentUser(const CallInfo& call);
  // Admins, the user, and users sharing a team with them.
  absl::StatusOr<v1::User> GetUser(const v1::GetUserRequest& request, const CallInfo& call);
  // Every authenticated caller (to share with other users); filter on name, disabled, admin.
  absl::StatusOr<v1::ListUsersResponse> ListUsers(const v1::ListUsersRequest& request,
                                                  const CallInfo& call);
  // Admins only. The password is hashed between the authorization read and the insert.
  absl::StatusOr<v1::User> CreateUser(const v1::CreateUserRequest& request, const CallInfo& call);
  absl::StatusOr<v1::User> UpdateUser(const v1::UpdateUserRequest& request, const CallInfo& call);
  // Admins only; FAILED_PRECONDITION (LAST_ADMIN, OWNS_PROJECTS) for the last enabled admin or
  // a user who still owns projects.
  absl::Status DeleteUser(const v1::DeleteUserRequest& request, const CallInfo& call);
  // The user (with current_password: INVALID_ARGUMENT naming it when missing) or an admin
  // (without it, for someone else). A wrong current password is PERMISSION_DENIED (reason
  // WRONG_PASSWORD); while the username's login delay runs, RESOURCE_EXHAUSTED (reason
  // LOGIN_THROTTLED) before any check. ABORTED (reason PASSWORD_CHANGED) if the password changed
  // between the check and the write: the check proved the old one only. The hasher's refusals
  // (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED PASSWORD_WORK_BUSY) change nothing. A change ends
  // every session of the user (refresh tokens deleted, not-before raised).
  absl::Status SetPassword(const v1::SetPasswordRequest& request, const CallInfo& call);

 private:
  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  const Clock& clock_;
  IdGenerator& ids_;
  LoginThrottle* throttle_;
  PasswordHasher* hasher_;
};

}  // namespace submarine::permission
