#include "services/permission/user_manager.h"

#include <google/protobuf/empty.pb.h>

#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/api/field_mask.h"
#include "common/api/filter_compiler.h"
#include "common/api/list_request.h"
#include "common/status/status.h"
#include "services/permission/identity_rules.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

absl::Status LastAdmin(const std::string& username) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "LAST_ADMIN",
                   absl::StrCat("user \"", username,
                                "\" is the last enabled administrator; make another user an "
                                "administrator first"),
                   {{"user", username}});
}

absl::Status WrongPassword() {
  return MakeError(absl::StatusCode::kPermissionDenied, "WRONG_PASSWORD",
                   "current_password: does not match", {{"field", "current_password"}});
}

absl::Status PasswordChanged(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "PASSWORD_CHANGED",
                   absl::StrCat("the password of ", Quote(name),
                                " changed while this change was being checked; retry with the "
                                "current password"),
                   {{"resource", name}});
}

}  // namespace

absl::StatusOr<v1::User> UserManager::GetCurrentUser(const CallInfo& call) {
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        SUBMARINE_RETURN_IF_ERROR(caller.RequireUser("reading the current user"));
        auto user = PermissionStore::FindUser(tx, caller.username, false);
        if (!user) return NotFound("user", "users/" + caller.username);
        out = user->user;
        FillTeams(tx, {&out});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::User> UserManager::GetUser(const v1::GetUserRequest& req, const CallInfo& call) {
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        std::string username;
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name(), "name", &username));
        if (!caller.MayManageUser(username) &&
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

absl::StatusOr<v1::ListUsersResponse> UserManager::ListUsers(const v1::ListUsersRequest& req,
                                                             const CallInfo& call) {
  UserListQuery q;
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  SUBMARINE_RETURN_IF_ERROR(CheckText(req.filter(), "filter", 1024));
  SUBMARINE_ASSIGN_OR_RETURN(q.filter,
                             api::CompileFilter(req.filter(), PermissionStore::UserFilterFields()));
  uint64_t hash = api::QueryHash({"users", req.filter()});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  q.after_seq = token.after_id();
  const int page = q.limit;
  q.limit = page + 1;
  v1::ListUsersResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;  // every authenticated caller may list usernames, to share with them
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

absl::StatusOr<v1::User> UserManager::CreateUser(const v1::CreateUserRequest& req,
                                                 const CallInfo& call) {
  // Authorization first, then validation, then the slow hash with no connection held.
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        return caller.RequireAdmin("users", "creating users");
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
  SUBMARINE_ASSIGN_OR_RETURN(std::string hash, hasher_->Hash(req.password(), call.deadline));
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateUser", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    SUBMARINE_RETURN_IF_ERROR(caller.RequireAdmin("users", "creating users"));
    if (PermissionStore::FindUser(tx, id, false)) return AlreadyExists("user", name);
    int64_t now = NowMicros(clock_);
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

absl::StatusOr<v1::User> UserManager::UpdateUser(const v1::UpdateUserRequest& req,
                                                 const CallInfo& call) {
  const v1::User& in = req.user();
  std::string username;
  SUBMARINE_RETURN_IF_ERROR(ParseUserName(in.name(), "user.name", &username));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto paths, api::UpdatePaths(req.update_mask(), {"display_name", "email", "disabled", "admin"}));
  if (paths.empty()) {
    if (!in.display_name().empty()) paths.push_back("display_name");
    if (!in.email().empty()) paths.push_back("email");
    if (in.disabled()) paths.push_back("disabled");
    if (in.admin()) paths.push_back("admin");
  }
  std::set<std::string> set(paths.begin(), paths.end());
  v1::User out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "UpdateUser", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.MayManageUser(username)) return Denied(in.name(), "updating another user");
    if (set.count("disabled") || set.count("admin")) {
      SUBMARINE_RETURN_IF_ERROR(
          caller.RequireAdmin(in.name(), "changing the disabled or admin flag"));
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
    int64_t now = NowMicros(clock_);
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

absl::Status UserManager::DeleteUser(const v1::DeleteUserRequest& req, const CallInfo& call) {
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "DeleteUser", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    SUBMARINE_RETURN_IF_ERROR(caller.RequireAdmin(req.name(), "deleting users"));
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
    PermissionStore::RaiseNotBefore(tx, username, CeilSecondMicros(NowMicros(clock_)));
    return PublishUser(tx, found->user, v1::DELETED, call);
  });
}

absl::Status UserManager::SetPassword(const v1::SetPasswordRequest& req, const CallInfo& call) {
  // A repeated request id answers the first answer: after a change the old current password
  // would no longer verify, so the repeat must not be checked again.
  google::protobuf::Empty done;
  SUBMARINE_ASSIGN_OR_RETURN(bool answered,
                             idempotency_->Answered(*pool_, call, "SetPassword", req,
                                                    req.request_id(), &done));
  if (answered) return absl::OkStatus();
  std::string username;
  bool own = false;
  std::string checked_hash;  // the hash the current password was checked against
  // 1. Who asks and what is there, in one short read.
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.name(), "name", &username));
        if (!caller.MayManageUser(username)) {
          return Denied(req.name(), "changing another user's password");
        }
        SUBMARINE_RETURN_IF_ERROR(CheckPassword(req.password(), "password"));
        own = caller.is(username);
        if (own && req.current_password().empty()) {
          return InvalidField("current_password", "is required to change your own password");
        }
        auto target = PermissionStore::FindUser(tx, username, false);
        if (!target) return NotFound("user", req.name());
        checked_hash = std::move(target->password_hash);
        return absl::OkStatus();
      }));
  // 2. Argon2 with no connection held: one turn for checking the current password (a guess,
  // throttled like a login) and hashing the new one.
  std::optional<LoginThrottle::Attempt> attempt;
  if (own) {
    SUBMARINE_ASSIGN_OR_RETURN(LoginThrottle::Attempt admitted,
                               throttle_->Admit(username, clock_.Now()));
    attempt.emplace(std::move(admitted));
  }
  std::string hash;
  {
    SUBMARINE_ASSIGN_OR_RETURN(PasswordHasher::Turn turn, hasher_->Acquire(call.deadline));
    if (own) {
      if (req.current_password().size() > kMaxPassword ||
          !hasher_->Verify(turn, checked_hash, req.current_password())) {
        attempt->Failed(clock_.Now());
        return WrongPassword();
      }
      attempt->Succeeded();
    }
    SUBMARINE_ASSIGN_OR_RETURN(hash, hasher_->Hash(turn, req.password()));
  }  // the turn goes back before the write
  // 3. The write, re-checking who asks and that the password did not change meanwhile.
  return idempotency_->Transact(
      *pool_, call, "SetPassword", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.MayManageUser(username)) {
      return Denied(req.name(), "changing another user's password");
    }
    auto found = PermissionStore::FindUser(tx, username, true);
    if (!found) return NotFound("user", req.name());
    if (own && found->password_hash != checked_hash) return PasswordChanged(req.name());
    int64_t now = NowMicros(clock_);
    PermissionStore::SetPasswordHash(tx, username, hash, now);
    PermissionStore::DeleteRefreshTokensOf(tx, username);
    PermissionStore::RaiseNotBefore(tx, username, CeilSecondMicros(now));
    *found->user.mutable_update_time() = Ts(now);
    return PublishUser(tx, found->user, v1::UPDATED, call);
  });
}

}  // namespace submarine::permission
