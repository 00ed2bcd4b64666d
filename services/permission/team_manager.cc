#include "services/permission/team_manager.h"

#include <google/protobuf/empty.pb.h>

#include "absl/strings/str_cat.h"
#include "common/api/list_request.h"
#include "common/status/status.h"
#include "services/permission/identity_rules.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

absl::Status LastOwner(const std::string& team) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "LAST_OWNER",
                   absl::StrCat("team \"", team,
                                "\" would have no owner left; make another "
                                "member an owner first"),
                   {{"team", team}});
}

}  // namespace

absl::StatusOr<v1::Team> TeamManager::CreateTeam(const v1::CreateTeamRequest& req,
                                                 const CallInfo& call) {
  const std::string& id = req.team_id();
  v1::Team out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateTeam", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (id.empty()) return InvalidField("team_id", "is required");
    SUBMARINE_RETURN_IF_ERROR(ValidateId(id, "team_id"));
    std::string name = "teams/" + id;
    if (!req.team().name().empty() && req.team().name() != name) {
      return InvalidField("team.name", "is output only on create (set team_id instead)");
    }
    SUBMARINE_RETURN_IF_ERROR(CheckText(req.team().display_name(), "team.display_name", 256));
    SUBMARINE_RETURN_IF_ERROR(CheckText(req.team().description(), "team.description", 4096, true));
    if (PermissionStore::FindTeam(tx, id, false)) return AlreadyExists("team", name);
    out.set_name(name);
    out.set_display_name(req.team().display_name());
    out.set_description(req.team().description());
    *out.mutable_create_time() = Ts(NowMicros(clock_));
    try {
      PermissionStore::InsertTeam(tx, id, out);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("team", name);
    }
    if (!caller.username.empty()) {
      PermissionStore::UpsertMember(tx, id, caller.username, v1::OWNER);
      out.set_member_count(1);
    }
    return PublishTeam(tx, id, v1::CREATED,
                       caller.username.empty() ? "" : "users/" + caller.username, call);
  }));
  return out;
}

absl::StatusOr<v1::Team> TeamManager::GetTeam(const v1::GetTeamRequest& req, const CallInfo& call) {
  v1::Team out;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;  // teams are visible to every user (to share with them)
        std::string id;
        SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.name(), "name", &id));
        auto team = PermissionStore::FindTeam(tx, id, false);
        if (!team) return NotFound("team", req.name());
        out = *team;
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::ListTeamsResponse> TeamManager::ListTeams(const v1::ListTeamsRequest& req,
                                                             const CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(
      int page, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  uint64_t hash = api::QueryHash({"teams"});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  v1::ListTeamsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;
        auto rows = PermissionStore::ListTeams(tx, token.after_id(), page + 1);
        resp.set_next_page_token(api::TakePage(
            rows, page, hash, [&](const auto& r) { *resp.add_teams() = r.second; },
            [](const auto& r, submarine::common::v1::PageToken* next) {
              next->set_after_id(r.first);
            }));
        return absl::OkStatus();
      }));
  return resp;
}

absl::Status TeamManager::DeleteTeam(const v1::DeleteTeamRequest& req, const CallInfo& call) {
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "DeleteTeam", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string id;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.name(), "name", &id));
    if (!caller.admin && caller.TeamRole(id) != v1::OWNER) {
      return Denied(req.name(), "deleting a team (its owners only)");
    }
    if (!PermissionStore::FindTeam(tx, id, true)) return NotFound("team", req.name());
    SUBMARINE_RETURN_IF_ERROR(CheckOwnsNothing(tx, req.name()));
    PermissionStore::DeleteAccessOf(tx, req.name());
    PermissionStore::DeleteTeam(tx, id);
    return PublishTeam(tx, id, v1::DELETED, "", call);
  });
}

absl::StatusOr<v1::TeamMember> TeamManager::SetTeamMember(const v1::SetTeamMemberRequest& req,
                                                          const CallInfo& call) {
  v1::TeamMember out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "SetTeamMember", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string team, user;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
    int mine = caller.admin ? v1::OWNER : caller.TeamRole(team);
    if (mine < v1::MAINTAINER) return Denied(req.team(), "managing members (maintainers only)");
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.member().user(), "member.user", &user));
    int role = req.member().role() == v1::TEAM_ROLE_UNSPECIFIED ? v1::MEMBER : req.member().role();
    if (role < v1::MEMBER || role > v1::OWNER) {
      return InvalidField("member.role", "is MEMBER, MAINTAINER or OWNER");
    }
    if (!PermissionStore::FindTeam(tx, team, true)) return NotFound("team", req.team());
    if (!PermissionStore::FindUser(tx, user, false)) return NotFound("user", req.member().user());
    auto current = PermissionStore::MemberRole(tx, team, user);
    bool changes_role = current && *current != role;
    if ((changes_role || role > v1::MEMBER) && mine < v1::OWNER) {
      return Denied(req.team(), "changing roles (owners only)");
    }
    if (current && *current == v1::OWNER && role < v1::OWNER &&
        PermissionStore::CountOwners(tx, team) <= 1) {
      return LastOwner(team);
    }
    PermissionStore::UpsertMember(tx, team, user, role);
    out.set_user("users/" + user);
    out.set_role(static_cast<v1::TeamRole>(role));
    return PublishTeam(tx, team, v1::UPDATED, out.user(), call);
  }));
  return out;
}

absl::Status TeamManager::RemoveTeamMember(const v1::RemoveTeamMemberRequest& req,
                                           const CallInfo& call) {
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "RemoveTeamMember", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::string team, user;
    SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
    SUBMARINE_RETURN_IF_ERROR(ParseUserName(req.user(), "user", &user));
    int mine = caller.admin ? v1::OWNER : caller.TeamRole(team);
    bool self = caller.is(user) && mine > 0;  // anyone may leave a team
    if (!self && mine < v1::MAINTAINER) {
      return Denied(req.team(), "removing members (maintainers only)");
    }
    if (!PermissionStore::FindTeam(tx, team, true)) return NotFound("team", req.team());
    auto current = PermissionStore::MemberRole(tx, team, user);
    if (!current) return NotFound("team member", req.user());
    if (!self && *current > v1::MEMBER && mine < v1::OWNER) {
      return Denied(req.team(), "removing a maintainer or owner (owners only)");
    }
    if (*current == v1::OWNER && PermissionStore::CountOwners(tx, team) <= 1) {
      return LastOwner(team);
    }
    PermissionStore::RemoveMember(tx, team, user);
    return PublishTeam(tx, team, v1::UPDATED, req.user(), call);
  });
}

absl::StatusOr<v1::ListTeamMembersResponse> TeamManager::ListTeamMembers(
    const v1::ListTeamMembersRequest& req, const CallInfo& call) {
  v1::ListTeamMembersResponse resp;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        (void)caller;
        std::string team;
        SUBMARINE_RETURN_IF_ERROR(ParseTeamName(req.team(), "team", &team));
        if (!PermissionStore::FindTeam(tx, team, false)) return NotFound("team", req.team());
        for (auto& m : PermissionStore::ListMembers(tx, team)) *resp.add_members() = std::move(m);
        return absl::OkStatus();
      }));
  return resp;
}

}  // namespace submarine::permission
