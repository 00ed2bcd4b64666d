#pragma once
// Who is calling and what they may do, decided from the permission service's own tables (never
// from the admin/teams fields of the principal, which are only what the token said when it was
// issued).
//
// Effective permission of user u on a resource of project p (READ=1 < WRITE=2 < ADMIN=3):
//   - 0 if u does not exist or is disabled, or p does not exist (then project_missing);
//   - ADMIN for platform admins;
//   - otherwise the max of: the owner rule (owner "users/u" → ADMIN; owner "teams/t" → ADMIN for
//     t's OWNERs and MAINTAINERs, WRITE for its MEMBERs), p's role bindings of "users/u",
//     "teams/t" (each team of u) and "allUsers" (VIEWER=READ, EDITOR=WRITE, PROJECT_ADMIN=ADMIN),
//     and, for a resource inside p, the grants to those subjects on that resource or on any
//     resource containing it.
// Evaluate answers any number of questions with a fixed number of queries (five).

#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "services/permission/permission_names.h"
#include "submarine/common/v1/principal.pb.h"

namespace submarine::permission {

using rpc::CallInfo;

// The caller, resolved against the database by ResolveCaller: the one definition of who is
// calling that every part of this service (users, teams, projects, sessions, access, quotas,
// credentials, audit) decides with. Admin flags and team memberships always come from the
// database, never from the principal (which only says what a token said when it was issued).
//
// What each kind of principal may do:
//   * USER u: u's rights. u must exist and be enabled.
//   * SERVICE acting for user u (principal.user = u): exactly u's rights, decided as for USER u
//     (an unknown or disabled u is refused the same way), plus two things that only a service
//     does on a user's behalf: asking permission questions about other users (MayAskAbout), and
//     receiving u's credential secrets (ReceivesSecretsOf; the internal AccessCredentialSecret).
//   * SERVICE acting for itself (principal.user empty): a platform administrator's rights. It
//     holds the internal secret, which can sign any principal, so anything less would protect
//     nothing; it is what housekeeping and event handlers run as (rpc::CallInfo::System). It
//     has no user: what needs one ("the calling user", a project's default owner, a user's
//     secrets) refuses it with INVALID_ARGUMENT naming "principal" (RequireUser), or does not
//     apply.
//   * anonymous: nothing (ResolveCaller answers UNAUTHENTICATED).
// Whether a method may be called by a USER at all (internal_only) is the call interceptor's
// decision (common/rpc/call_context.h), from the proto options; nothing here re-checks it.
struct Caller {
  bool service = false;  // a SERVICE principal
  std::string username;  // the user (or the user a service acts for); "" for a bare service
  bool admin = false;    // platform admin; a service acting for itself counts as one
  std::map<std::string, int> teams;  // team id → TeamRole
  std::string actor;                 // what events record: "users/u", "services/s"

  bool is(const std::string& user) const { return !username.empty() && username == user; }
  // Team role of the caller in `team` (0 if none).
  int TeamRole(const std::string& team) const {
    auto it = teams.find(team);
    return it == teams.end() ? 0 : it->second;
  }
  // Subjects the caller's bindings and grants may be given to.
  std::vector<std::string> Subjects() const;

  // May ask what `user` may do: themselves, admins and services.
  bool MayAskAbout(const std::string& user) const { return is(user) || admin || service; }
  // May act on what belongs to user `user` (their quota, credentials, tokens): the user
  // (directly or through a service acting for them) and admins.
  bool MayManageUser(const std::string& user) const { return is(user) || admin; }
  // May receive the plain credential secrets of `user`: only a service acting for that user
  // (launching their workload); never a USER, the owner and admins included.
  bool ReceivesSecretsOf(const std::string& user) const { return service && is(user); }

  // OK for platform admins (a service acting for itself included); otherwise PERMISSION_DENIED
  // (reason PERMISSION_DENIED) naming `resource` and "<what> (administrators only)".
  absl::Status RequireAdmin(const std::string& resource, const std::string& what) const;
  // OK when the call acts for a user; INVALID_ARGUMENT naming "principal" for a service acting
  // for itself, "<what> needs a user".
  absl::Status RequireUser(const std::string& what) const;
};

// Resolves the call's principal as Caller says. UNAUTHENTICATED for an anonymous call (reason
// UNAUTHENTICATED), and for a user — called directly or through a service — that does not exist
// (USER_UNKNOWN) or is disabled (USER_DISABLED). Reads the users and memberships tables (needs
// PermissionStore's statements on the connection); a bare service costs no query.
absl::StatusOr<Caller> ResolveCaller(pqxx::transaction_base& tx, const CallInfo& call);

struct AccessQuestion {
  std::string username;
  ResourceRef resource;
  int permission = 1;
};
struct AccessAnswer {
  int effective = 0;  // 0 none, else the Permission value
  bool project_missing = false;
  bool user_missing = false;  // unknown or disabled user
};
std::vector<AccessAnswer> Evaluate(pqxx::transaction_base& tx,
                                   const std::vector<AccessQuestion>& questions);

// PERMISSION_DENIED (reason PERMISSION_DENIED) naming the resource and the permission.
absl::Status Denied(const std::string& resource, const std::string& what);

// The caller's permission on one resource: OK if it reaches `permission`; PERMISSION_DENIED
// otherwise (also when the project is missing, unless the caller is an admin: then NOT_FOUND).
absl::Status Require(pqxx::transaction_base& tx, const Caller& caller, const ResourceRef& resource,
                     const std::string& resource_name, int permission);

}  // namespace submarine::permission
