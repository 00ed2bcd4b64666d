#include "services/permission/project_manager.h"

#include <google/protobuf/empty.pb.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/field_mask.h"
#include "common/api/list_request.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/permission/identity_rules.h"
#include "services/permission/permission_errors.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

// Who may own a project the caller creates or transfers: themselves, a team they maintain or
// own; admins anyone. The owner must exist.
absl::Status CheckOwner(pqxx::transaction_base& tx, const Caller& caller, const std::string& owner,
                        const std::string& field) {
  std::string id;
  if (owner.rfind("users/", 0) == 0) {
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(owner, field, &id));
    if (!caller.MayManageUser(id)) {
      return Denied(owner, "giving a project to another user (administrators only)");
    }
    if (!PermissionStore::FindUser(tx, id, false)) return NotFound("user", owner);
    return absl::OkStatus();
  }
  if (owner.rfind("teams/", 0) == 0) {
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(owner, field, &id));
    if (!caller.admin && caller.TeamRole(id) < v1::MAINTAINER) {
      return Denied(owner, "giving a project to a team you do not maintain");
    }
    if (!PermissionStore::FindTeam(tx, id, false)) return NotFound("team", owner);
    return absl::OkStatus();
  }
  return InvalidField(
      field, absl::StrCat("expected \"users/{user}\" or \"teams/{team}\", got ", Quote(owner)));
}

// "3 environments", "1 environment".
std::string Count(int64_t n, const std::string& collection) {
  std::string what = collection;
  if (n == 1 && what.size() > 1 && what.back() == 's') what.pop_back();
  return absl::StrCat(n, " ", what);
}

}  // namespace

absl::StatusOr<v1::Project> ProjectManager::CreateProject(const v1::CreateProjectRequest& req,
                                                          const CallInfo& call) {
  const std::string& id = req.project_id();
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateProject", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (id.empty()) return InvalidField("project_id", "is required");
    SUBMARINE_RETURN_IF_ERROR(ValidateId(id, "project_id"));
    std::string name = "projects/" + id;
    const v1::Project& in = req.project();
    if (!in.name().empty() && in.name() != name) {
      return InvalidField("project.name", "is output only on create (set project_id instead)");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckText(in.display_name(), "project.display_name", 256));
    SUBMARINE_RETURN_IF_ERROR(CheckText(in.description(), "project.description", 4096, true));
    SUBMARINE_ASSIGN_OR_RETURN(
        std::string cluster,
        CanonicalClusterName(in.default_compute_cluster(), "project.default_compute_cluster"));
    std::string owner = in.owner();
    if (owner.empty()) {
      if (caller.username.empty()) {
        return InvalidField("project.owner", "is required when a service creates a project");
      }
      owner = "users/" + caller.username;
    }
    SUBMARINE_RETURN_IF_ERROR(CheckOwner(tx, caller, owner, "project.owner"));
    if (PermissionStore::FindProject(tx, id, false)) return AlreadyExists("project", name);
    int64_t now = NowMicros(clock_);
    out.set_name(name);
    out.set_display_name(in.display_name());
    out.set_description(in.description());
    out.set_owner(owner);
    out.set_default_compute_cluster(cluster);
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_create_time() = Ts(now);
    *out.mutable_update_time() = Ts(now);
    try {
      PermissionStore::InsertProject(tx, id, out);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("project", name);
    }
    return PublishProject(tx, out, v1::CREATED, call);
  }));
  return out;
}

absl::StatusOr<v1::Project> ProjectManager::GetProject(const v1::GetProjectRequest& req,
                                                       const CallInfo& call) {
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        ResourceRef ref;
        SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.name(), "name", &ref.project));
        SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.name(), v1::READ));
        auto found = PermissionStore::FindProject(tx, ref.project, false);
        if (!found) return NotFound("project", req.name());
        out = found->project;
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::ListProjectsResponse> ProjectManager::ListProjects(
    const v1::ListProjectsRequest& req, const CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(
      int page, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  v1::ListProjectsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        // The token is bound to who asked: another caller's page boundaries mean nothing here.
        uint64_t hash = api::QueryHash({"projects", caller.actor});
        SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
        std::vector<std::string> owners;
        if (!caller.username.empty()) owners.push_back("users/" + caller.username);
        for (const auto& [team, role] : caller.teams) owners.push_back("teams/" + team);
        auto rows = PermissionStore::ListProjects(tx, caller.admin, owners, caller.Subjects(),
                                                  token.after_id(), page + 1);
        resp.set_next_page_token(api::TakePage(
            rows, page, hash, [&](const auto& r) { *resp.add_projects() = r.project; }, kAfterSeq));
        return absl::OkStatus();
      }));
  return resp;
}

absl::StatusOr<v1::Project> ProjectManager::UpdateProject(const v1::UpdateProjectRequest& req,
                                                          const CallInfo& call) {
  const v1::Project& in = req.project();
  v1::Project out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "UpdateProject", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseProjectName(in.name(), "project.name", &ref.project));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, in.name(), v1::ADMIN));
    SUBMARINE_ASSIGN_OR_RETURN(
        auto paths, api::UpdatePaths(req.update_mask(), {"display_name", "description", "owner",
                                                         "default_compute_cluster"}));
    if (paths.empty()) {
      if (!in.display_name().empty()) paths.push_back("display_name");
      if (!in.description().empty()) paths.push_back("description");
      if (!in.owner().empty()) paths.push_back("owner");
      if (!in.default_compute_cluster().empty()) paths.push_back("default_compute_cluster");
    }
    auto found = PermissionStore::FindProject(tx, ref.project, true);
    if (!found) return NotFound("project", in.name());
    if (!in.etag().empty() && in.etag() != found->project.etag()) return EtagMismatch(in.name());
    out = found->project;
    for (const auto& p : paths) {
      if (p == "display_name") {
        SUBMARINE_RETURN_IF_ERROR(CheckText(in.display_name(), "project.display_name", 256));
        out.set_display_name(in.display_name());
      } else if (p == "description") {
        SUBMARINE_RETURN_IF_ERROR(CheckText(in.description(), "project.description", 4096, true));
        out.set_description(in.description());
      } else if (p == "owner") {
        if (in.owner() != out.owner()) {
          SUBMARINE_RETURN_IF_ERROR(CheckOwner(tx, caller, in.owner(), "project.owner"));
        }
        out.set_owner(in.owner());
      } else if (p == "default_compute_cluster") {
        SUBMARINE_ASSIGN_OR_RETURN(std::string cluster,
                                   CanonicalClusterName(in.default_compute_cluster(),
                                                        "project.default_compute_cluster"));
        out.set_default_compute_cluster(cluster);
      }
    }
    out.set_etag(ids_.RandomHex(8));
    *out.mutable_update_time() = Ts(NowMicros(clock_));
    PermissionStore::UpdateProject(tx, ref.project, out);
    return PublishProject(tx, out, v1::UPDATED, call);
  }));
  return out;
}

absl::Status ProjectManager::CheckEmpty(const std::string& name, const CallInfo& call) const {
  if (!holdings_) return absl::OkStatus();
  auto held = holdings_(name, call.deadline);
  if (!held.ok()) {
    log::Get("projects")
        ->warn("cannot tell what {} still holds, so it is not deleted: {}", name,
               Message(held.status()));
    return MakeError(absl::StatusCode::kUnavailable, "PROJECT_HOLDINGS_UNKNOWN",
                     absl::StrCat("cannot tell whether project ", Quote(name),
                                  " still holds resources, so it was not deleted; retry later"),
                     {{"project", name}});
  }
  std::vector<std::string> parts;
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const auto& [collection, n] : *held) {
    if (n <= 0) continue;
    parts.push_back(Count(n, collection));
    metadata.emplace_back(collection, absl::StrCat(n));
  }
  if (parts.empty()) return absl::OkStatus();
  std::string list = parts.size() == 1
                         ? parts[0]
                         : absl::StrCat(absl::StrJoin(parts.begin(), parts.end() - 1, ", "),
                                        " and ", parts.back());
  return WithMetadata(
      MakeError(absl::StatusCode::kFailedPrecondition, "PROJECT_NOT_EMPTY",
                absl::StrCat("project ", Quote(name), " still holds ", list, "; delete them first"),
                {{"project", name}}),
      metadata);
}

absl::Status ProjectManager::DeleteProject(const v1::DeleteProjectRequest& req,
                                           const CallInfo& call) {
  // A repeated request id answers the first answer before anything is checked again.
  google::protobuf::Empty done;
  SUBMARINE_ASSIGN_OR_RETURN(bool answered,
                             idempotency_->Answered(*pool_, call, "DeleteProject", req,
                                                    req.request_id(), &done));
  if (answered) return absl::OkStatus();
  // Permission, then existence, in a short read; then what the project still holds, asked with
  // no connection held (the hook calls other services).
  ResourceRef ref;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.name(), "name", &ref.project));
        SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.name(), v1::ADMIN));
        if (!PermissionStore::FindProject(tx, ref.project, false)) {
          return NotFound("project", req.name());
        }
        return absl::OkStatus();
      }));
  SUBMARINE_RETURN_IF_ERROR(CheckEmpty(req.name(), call));
  return idempotency_->Transact(
      *pool_, call, "DeleteProject", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.name(), v1::ADMIN));
    auto found = PermissionStore::FindProject(tx, ref.project, true);
    if (!found) return NotFound("project", req.name());
    PermissionStore::DeleteProject(tx, ref.project);  // bindings and grants cascade
    return PublishProject(tx, found->project, v1::DELETED, call);
  });
}

}  // namespace submarine::permission
