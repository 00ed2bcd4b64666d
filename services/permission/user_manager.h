#pragma once
// UserManager decides everything about user accounts: reading and listing them, creating,
// updating and deleting them (admins; users may edit their own display name and e-mail), and
// passwords. Who may do what comes from ResolveCaller/Caller (access_evaluator.h); every error
// names its field; each change writes its UserChanged event in the same transaction, and a
// change that affects tokens (admin flag, password, deletion) raises the user's not-before so
// earlier tokens stop working. Thread-safe.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/crypto.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class UserManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock` and `ids` must
  // outlive the manager. New passwords are hashed at `password_cost`.
  UserManager(db::ConnectionPool* pool, const Clock& clock, IdGenerator& ids,
              const auth::PasswordCost& password_cost)
      : pool_(pool), clock_(clock), ids_(ids), password_cost_(password_cost) {}

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
  // WRONG_PASSWORD). A change ends every session of the user (refresh tokens deleted,
  // not-before raised).
  absl::Status SetPassword(const v1::SetPasswordRequest& request, const CallInfo& call);

 private:
  db::ConnectionPool* pool_;
  const Clock& clock_;
  IdGenerator& ids_;
  const auth::PasswordCost password_cost_;
};

}  // namespace submarine::permission
