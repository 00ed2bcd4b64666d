#include "services/permission/access_evaluator.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "services/permission/permission_store.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {
namespace {

using submarine::common::v1::Principal;

const char* PermissionName(int p) {
  switch (p) {
    case 1:
      return "READ";
    case 2:
      return "WRITE";
    case 3:
      return "ADMIN";
    default:
      return "UNSPECIFIED";
  }
}

std::vector<std::string> SubjectsOf(const std::string& username,
                                    const std::vector<std::string>& teams) {
  std::vector<std::string> out = {"users/" + username, kAllUsers};
  for (const auto& t : teams) out.push_back("teams/" + t);
  return out;
}

}  // namespace

std::vector<std::string> Caller::Subjects() const {
  std::vector<std::string> teams_list;
  for (const auto& [t, role] : teams) teams_list.push_back(t);
  if (username.empty()) return {};
  return SubjectsOf(username, teams_list);
}

absl::Status Caller::RequireAdmin(const std::string& resource, const std::string& what) const {
  if (admin) return absl::OkStatus();
  return Denied(resource, absl::StrCat(what, " (administrators only)"));
}

absl::Status Caller::RequireUser(const std::string& what) const {
  if (!username.empty()) return absl::OkStatus();
  return InvalidField("principal", absl::StrCat(what,
                                                " needs a user; a service acting for "
                                                "itself has none"));
}

absl::Status Denied(const std::string& resource, const std::string& what) {
  return MakeError(absl::StatusCode::kPermissionDenied, "PERMISSION_DENIED",
                   absl::StrCat("permission denied: ", what, " on ", Quote(resource)),
                   {{"resource", resource.substr(0, 256)}});
}

absl::StatusOr<Caller> ResolveCaller(pqxx::transaction_base& tx, const CallInfo& call) {
  Caller caller;
  caller.actor = call.subject;
  const Principal& p = call.principal;
  if (p.kind() == Principal::KIND_UNSPECIFIED) {
    return MakeError(absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED",
                     "this call needs an authenticated caller");
  }
  caller.service = p.kind() == Principal::SERVICE;
  caller.username = p.user();
  if (caller.service && caller.username.empty()) {
    // A service acting for itself holds the internal secret, which lets it assert any
    // principal anyway: treating it as an administrator adds no power.
    caller.admin = true;
    return caller;
  }
  if (!ValidateUsername(caller.username, "principal.user").ok()) {
    return MakeError(absl::StatusCode::kUnauthenticated, "USER_UNKNOWN",
                     "the calling user does not exist");
  }
  auto flags = PermissionStore::UserFlags(tx, {caller.username});
  if (flags.empty()) {
    return MakeError(absl::StatusCode::kUnauthenticated, "USER_UNKNOWN",
                     absl::StrCat("user \"", caller.username, "\" does not exist"),
                     {{"user", caller.username}});
  }
  if (flags[0].disabled) {
    return MakeError(absl::StatusCode::kUnauthenticated, "USER_DISABLED",
                     absl::StrCat("user \"", caller.username, "\" is disabled"),
                     {{"user", caller.username}});
  }
  caller.admin = flags[0].admin;
  for (const auto& m : PermissionStore::Memberships(tx, {caller.username})) {
    caller.teams[m.team_id] = m.role;
  }
  return caller;
}

std::vector<AccessAnswer> Evaluate(pqxx::transaction_base& tx,
                                   const std::vector<AccessQuestion>& questions) {
  std::vector<AccessAnswer> answers(questions.size());
  if (questions.empty()) return answers;
  std::set<std::string> users, projects, resources;
  for (const auto& q : questions) {
    users.insert(q.username);
    if (!q.resource.platform) projects.insert(q.resource.project);
    for (const auto& r : q.resource.chain) resources.insert(r);
  }
  std::vector<std::string> user_list(users.begin(), users.end());
  std::map<std::string, SubjectFlags> flags;
  for (auto& f : PermissionStore::UserFlags(tx, user_list)) flags[f.username] = f;
  std::map<std::string, std::map<std::string, int>> teams;  // user → team → role
  for (const auto& m : PermissionStore::Memberships(tx, user_list)) {
    teams[m.username][m.team_id] = m.role;
  }
  std::map<std::string, std::string> owners;
  for (auto& [id, owner] : PermissionStore::ProjectOwners(tx, {projects.begin(), projects.end()})) {
    owners[id] = owner;
  }
  std::set<std::string> subjects = {kAllUsers};
  for (const auto& u : users) {
    subjects.insert("users/" + u);
    for (const auto& [t, role] : teams[u]) subjects.insert("teams/" + t);
  }
  std::vector<std::string> subject_list(subjects.begin(), subjects.end());
  // (project, subject) → role; (resource, subject) → permission.
  std::map<std::pair<std::string, std::string>, int> bindings, grants;
  for (const auto& b :
       PermissionStore::BindingsFor(tx, {projects.begin(), projects.end()}, subject_list)) {
    bindings[{b.project_id, b.binding.subject()}] = b.binding.role();
  }
  for (const auto& g :
       PermissionStore::GrantsFor(tx, {resources.begin(), resources.end()}, subject_list)) {
    grants[{g.resource(), g.subject()}] = g.permission();
  }

  for (size_t i = 0; i < questions.size(); ++i) {
    const auto& q = questions[i];
    auto& a = answers[i];
    if (q.resource.platform) {
      // Platform resources: everyone reads them, administrators manage them; no grant applies.
      auto f = flags.find(q.username);
      a.user_missing = f == flags.end() || f->second.disabled;
      if (!a.user_missing) a.effective = f->second.admin ? 3 : 1;
      continue;
    }
    auto owner = owners.find(q.resource.project);
    a.project_missing = owner == owners.end();
    auto f = flags.find(q.username);
    a.user_missing = f == flags.end() || f->second.disabled;
    if (a.project_missing || a.user_missing) continue;
    if (f->second.admin) {
      a.effective = 3;
      continue;
    }
    const auto& user_teams = teams[q.username];
    int best = 0;
    const std::string& o = owner->second;
    if (o == "users/" + q.username) best = 3;
    if (o.rfind("teams/", 0) == 0) {
      auto t = user_teams.find(o.substr(6));
      if (t != user_teams.end()) best = std::max(best, t->second >= v1::MAINTAINER ? 3 : 2);
    }
    std::vector<std::string> mine = {"users/" + q.username, kAllUsers};
    for (const auto& [t, role] : user_teams) mine.push_back("teams/" + t);
    for (const auto& s : mine) {
      auto b = bindings.find({q.resource.project, s});
      if (b != bindings.end()) best = std::max(best, b->second);
      for (const auto& r : q.resource.chain) {
        auto g = grants.find({r, s});
        if (g != grants.end()) best = std::max(best, g->second);
      }
    }
    a.effective = best;
  }
  return answers;
}

absl::Status Require(pqxx::transaction_base& tx, const Caller& caller, const ResourceRef& resource,
                     const std::string& resource_name, int permission) {
  std::string what = PermissionName(permission);
  if (caller.username.empty()) {
    // A bare service: administrator rights, but existence still matters.
    if (resource.platform) return absl::OkStatus();
    if (PermissionStore::ProjectOwners(tx, {resource.project}).empty()) {
      return NotFound("project", "projects/" + resource.project);
    }
    return absl::OkStatus();
  }
  auto answer = Evaluate(tx, {{caller.username, resource, permission}})[0];
  if (answer.project_missing) {
    if (caller.admin) return NotFound("project", "projects/" + resource.project);
    return Denied(resource_name, what);
  }
  if (answer.effective < permission) return Denied(resource_name, what);
  return absl::OkStatus();
}

}  // namespace submarine::permission
