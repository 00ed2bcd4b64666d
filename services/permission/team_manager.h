#pragma once
// TeamManager decides everything about teams and their members. Teams are visible to every
// authenticated caller (to share with them). Whoever creates a team becomes its OWNER;
// MAINTAINERs add and remove MEMBERs; OWNERs also change roles and delete the team; anyone may
// leave; a team always keeps an owner (FAILED_PRECONDITION LAST_OWNER) and cannot be deleted
// while it owns projects (OWNS_PROJECTS). Platform admins (a service acting for itself
// included, see Caller) count as owners of every team. Each change writes a TeamChanged event
// in its transaction. Thread-safe.

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class TeamManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements) and `clock` must outlive it.
  TeamManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, const Clock& clock)
      : pool_(pool), idempotency_(idempotency), clock_(clock) {}

  absl::StatusOr<v1::Team> CreateTeam(const v1::CreateTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::Team> GetTeam(const v1::GetTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListTeamsResponse> ListTeams(const v1::ListTeamsRequest& request,
                                                  const CallInfo& call);
  absl::Status DeleteTeam(const v1::DeleteTeamRequest& request, const CallInfo& call);
  absl::StatusOr<v1::TeamMember> SetTeamMember(const v1::SetTeamMemberRequest& request,
                                               const CallInfo& call);
  absl::Status RemoveTeamMember(const v1::RemoveTeamMemberRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListTeamMembersResponse> ListTeamMembers(
      const v1::ListTeamMembersRequest& request, const CallInfo& call);

 private:
  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  const Clock& clock_;
};

}  // namespace submarine::permission
