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

// The caller, resolved against the database.
struct Caller {
  bool service = false;  // a SERVICE principal
  std::string username;  // the user (or the user a service acts for); "" for a bare service
  bool admin = false;    // platform admin; a service acting for itself counts as one
  std::map<std::string, int> teams;  // team id → TeamRole
  std::string actor;

  bool is(const std::string& user) const { return !username.empty() && username == user; }
  // Team role of the caller in `team` (0 if none).
  int TeamRole(const std::string& team) const {
    auto it = teams.find(team);
    return it == teams.end() ? 0 : it->second;
  }
  // Subjects the caller's bindings and grants may be given to.
  std::vector<std::string> Subjects() const;
};

// UNAUTHENTICATED for an anonymous call, an unknown or disabled user (reasons UNAUTHENTICATED,
// USER_UNKNOWN, USER_DISABLED).
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
