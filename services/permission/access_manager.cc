#include "services/permission/access_manager.h"

#include <google/protobuf/empty.pb.h>

#include "absl/strings/str_cat.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

constexpr int kMaxChecks = 1000;

absl::Status CheckPermissionValue(int permission, const std::string& field) {
  if (permission < v1::READ || permission > v1::ADMIN) {
    return InvalidField(field, "is READ, WRITE or ADMIN");
  }
  return absl::OkStatus();
}

// The subject must be well formed and, unless it is allUsers, exist.
absl::Status CheckSubjectExists(pqxx::transaction_base& tx, const std::string& subject,
                                const std::string& field) {
  SUBMARINE_RETURN_IF_ERROR(ValidateSubject(subject, field));
  bool exists = subject == kAllUsers ||
                (subject.rfind("users/", 0) == 0
                     ? PermissionStore::FindUser(tx, subject.substr(6), false).has_value()
                     : PermissionStore::FindTeam(tx, subject.substr(6), false).has_value());
  if (!exists) {
    return MakeError(absl::StatusCode::kNotFound, "SUBJECT_NOT_FOUND",
                     absl::StrCat(field, ": ", Quote(subject), " does not exist"),
                     {{"field", field}, {"subject", subject}});
  }
  return absl::OkStatus();
}

// The user a check is about: the caller by default; someone else only for services and admins.
absl::StatusOr<std::string> CheckedUser(const Caller& caller, const std::string& subject,
                                        const std::string& field) {
  if (subject.empty()) {
    if (caller.username.empty()) {
      return InvalidField(field, "is required when a service asks for itself");
    }
    return caller.username;
  }
  std::string user;
  SUBMARINE_RETURN_IF_ERROR(ParseUserName(subject, field, &user));
  if (!caller.MayAskAbout(user)) {
    return Denied(subject, "checking another user's permissions");
  }
  return user;
}

absl::Status PublishAccess(pqxx::work& tx, const std::string& resource, const std::string& subject,
                           v1::Change change, const CallInfo& call) {
  v1::AccessChanged event;
  event.set_resource(resource);
  event.set_subject(subject);
  event.set_change(change);
  return events::AppendToOutbox(tx, event, resource, call.request_id, call.subject);
}

}  // namespace

int64_t AccessManager::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
      .count();
}

absl::StatusOr<v1::RoleBinding> AccessManager::CreateRoleBinding(
    const v1::CreateRoleBindingRequest& req, const CallInfo& call) {
  v1::RoleBinding out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateRoleBinding", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.parent(), "parent", &ref.project));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.parent(), v1::ADMIN));
    const auto& in = req.role_binding();
    if (in.role() < v1::VIEWER || in.role() > v1::PROJECT_ADMIN) {
      return InvalidField("role_binding.role", "is VIEWER, EDITOR or PROJECT_ADMIN");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckSubjectExists(tx, in.subject(), "role_binding.subject"));
    bool replaced = false;
    out = PermissionStore::UpsertBinding(tx, ref.project, ids_.RandomHex(8), in.subject(),
                                         in.role(), NowMicros(), &replaced);
    return PublishAccess(tx, req.parent(), in.subject(), replaced ? v1::UPDATED : v1::CREATED,
                         call);
  }));
  return out;
}

absl::StatusOr<v1::ListRoleBindingsResponse> AccessManager::ListRoleBindings(
    const v1::ListRoleBindingsRequest& req, const CallInfo& call) {
  v1::ListRoleBindingsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        ResourceRef ref;
        SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.parent(), "parent", &ref.project));
        SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.parent(), v1::READ));
        for (auto& b : PermissionStore::ListBindings(tx, ref.project)) {
          *resp.add_role_bindings() = std::move(b);
        }
        return absl::OkStatus();
      }));
  return resp;
}

absl::Status AccessManager::DeleteRoleBinding(const v1::DeleteRoleBindingRequest& req,
                                              const CallInfo& call) {
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "DeleteRoleBinding", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    auto mid = req.name().find("/roleBindings/");
    if (mid == std::string::npos) {
      return InvalidField("name", absl::StrCat("expected \"projects/{project}/roleBindings/{id}\""
                                               ", got ",
                                               Quote(req.name())));
    }
    ResourceRef ref;
    std::string project_name = req.name().substr(0, mid);
    std::string id = req.name().substr(mid + 14);
    SUBMARINE_RETURN_IF_ERROR(ParseProjectName(project_name, "name", &ref.project));
    SUBMARINE_RETURN_IF_ERROR(ValidateHexId(id, "name"));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, project_name, v1::ADMIN));
    auto found = PermissionStore::FindBinding(tx, id);
    if (!found || found->project_id != ref.project) return NotFound("role binding", req.name());
    PermissionStore::DeleteBinding(tx, id);
    return PublishAccess(tx, project_name, found->binding.subject(), v1::DELETED, call);
  });
}

absl::StatusOr<v1::Grant> AccessManager::CreateGrant(const v1::CreateGrantRequest& req,
                                                     const CallInfo& call) {
  v1::Grant out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateGrant", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    const auto& in = req.grant();
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseResource(in.resource(), "grant.resource", &ref));
    if (ref.is_project()) {
      return InvalidField("grant.resource",
                          "grants are on resources inside a project; bind a role to share a "
                          "whole project");
    }
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, in.resource(), v1::ADMIN));
    SUBMARINE_RETURN_IF_ERROR(CheckPermissionValue(in.permission(), "grant.permission"));
    SUBMARINE_RETURN_IF_ERROR(CheckSubjectExists(tx, in.subject(), "grant.subject"));
    v1::Grant g;
    g.set_resource(in.resource());
    g.set_subject(in.subject());
    g.set_permission(in.permission());
    g.set_creator(caller.actor);
    bool replaced = false;
    out =
        PermissionStore::UpsertGrant(tx, ref.project, ids_.RandomHex(8), g, NowMicros(), &replaced);
    return PublishAccess(tx, in.resource(), in.subject(), replaced ? v1::UPDATED : v1::CREATED,
                         call);
  }));
  return out;
}

absl::StatusOr<v1::ListGrantsResponse> AccessManager::ListGrants(const v1::ListGrantsRequest& req,
                                                                 const CallInfo& call) {
  v1::ListGrantsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        if (req.resource().empty()) {
          SUBMARINE_RETURN_IF_ERROR(caller.RequireAdmin("grants", "listing every grant"));
        } else {
          ResourceRef ref;
          SUBMARINE_RETURN_IF_ERROR(ParseResource(req.resource(), "resource", &ref));
          SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, req.resource(), v1::ADMIN));
        }
        for (auto& g : PermissionStore::ListGrants(tx, req.resource())) {
          *resp.add_grants() = std::move(g);
        }
        return absl::OkStatus();
      }));
  return resp;
}

absl::Status AccessManager::DeleteGrant(const v1::DeleteGrantRequest& req, const CallInfo& call) {
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "DeleteGrant", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (req.name().rfind("grants/", 0) != 0) {
      return InvalidField("name",
                          absl::StrCat("expected \"grants/{id}\", got ", Quote(req.name())));
    }
    std::string id = req.name().substr(7);
    SUBMARINE_RETURN_IF_ERROR(ValidateHexId(id, "name"));
    auto found = PermissionStore::FindGrant(tx, id);
    // Without the grant there is no resource to check: only admins learn that it is missing.
    if (!found) {
      if (caller.admin) return NotFound("grant", req.name());
      return Denied(req.name(), "deleting a grant");
    }
    ResourceRef ref;
    SUBMARINE_RETURN_IF_ERROR(ParseResource(found->grant.resource(), "name", &ref));
    SUBMARINE_RETURN_IF_ERROR(Require(tx, caller, ref, found->grant.resource(), v1::ADMIN));
    PermissionStore::DeleteGrant(tx, id);
    return PublishAccess(tx, found->grant.resource(), found->grant.subject(), v1::DELETED, call);
  });
}

absl::StatusOr<v1::CheckPermissionResponse> AccessManager::CheckPermission(
    const v1::CheckPermissionRequest& req, const CallInfo& call) {
  google::protobuf::RepeatedPtrField<v1::CheckPermissionRequest> checks;
  *checks.Add() = req;
  v1::BatchCheckPermissionsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(Answer(checks, /*single=*/true, call, &resp));
  return resp.results(0);
}

absl::StatusOr<v1::BatchCheckPermissionsResponse> AccessManager::BatchCheckPermissions(
    const v1::BatchCheckPermissionsRequest& req, const CallInfo& call) {
  if (req.checks_size() > kMaxChecks) {
    return InvalidField("checks", absl::StrCat("at most ", kMaxChecks, " checks per call"));
  }
  v1::BatchCheckPermissionsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(Answer(req.checks(), /*single=*/false, call, &resp));
  return resp;
}

absl::Status AccessManager::Answer(
    const google::protobuf::RepeatedPtrField<v1::CheckPermissionRequest>& checks, bool single,
    const CallInfo& call, v1::BatchCheckPermissionsResponse* resp) {
  return pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::vector<AccessQuestion> questions;
    for (int i = 0; i < checks.size(); ++i) {
      const auto& c = checks[i];
      std::string prefix = single ? "" : absl::StrCat("checks[", i, "].");
      AccessQuestion q;
      SUBMARINE_ASSIGN_OR_RETURN(q.username, CheckedUser(caller, c.subject(), prefix + "subject"));
      SUBMARINE_RETURN_IF_ERROR(ParseResource(c.resource(), prefix + "resource", &q.resource,
                                              /*allow_platform=*/true));
      SUBMARINE_RETURN_IF_ERROR(CheckPermissionValue(c.permission(), prefix + "permission"));
      q.permission = c.permission();
      questions.push_back(std::move(q));
    }
    auto answers = Evaluate(tx, questions);
    for (size_t i = 0; i < answers.size(); ++i) {
      auto* r = resp->add_results();
      r->set_allowed(!answers[i].project_missing &&
                     answers[i].effective >= questions[i].permission);
      r->set_project_missing(answers[i].project_missing);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ListAccessibleResponse> AccessManager::ListAccessible(
    const v1::ListAccessibleRequest& req, const CallInfo& call) {
  v1::ListAccessibleResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        AccessQuestion q;
        SUBMARINE_ASSIGN_OR_RETURN(q.username, CheckedUser(caller, req.subject(), "subject"));
        SUBMARINE_RETURN_IF_ERROR(ParseProjectName(req.parent(), "parent", &q.resource.project));
        SUBMARINE_RETURN_IF_ERROR(ValidateCollection(req.collection(), "collection"));
        q.permission = req.permission() == v1::PERMISSION_UNSPECIFIED ? v1::READ : req.permission();
        SUBMARINE_RETURN_IF_ERROR(CheckPermissionValue(q.permission, "permission"));
        auto answer = Evaluate(tx, {q})[0];
        if (answer.project_missing || answer.user_missing) return absl::OkStatus();
        if (answer.effective >= q.permission) {
          resp.set_all(true);
          return absl::OkStatus();
        }
        std::vector<std::string> teams;
        for (const auto& m : PermissionStore::Memberships(tx, {q.username}))
          teams.push_back(m.team_id);
        std::vector<std::string> subjects = {"users/" + q.username, kAllUsers};
        for (const auto& t : teams) subjects.push_back("teams/" + t);
        for (auto& r :
             PermissionStore::GrantedIn(tx, absl::StrCat(req.parent(), "/", req.collection(), "/"),
                                        subjects, q.permission)) {
          resp.add_resources(std::move(r));
        }
        return absl::OkStatus();
      }));
  return resp;
}

}  // namespace submarine::permission
