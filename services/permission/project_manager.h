#pragma once
// ProjectManager decides everything about projects, the workspaces every asset lives in: who
// may create, read, list, update and delete them (access_evaluator.h: reading needs READ on the
// project, changing and deleting ADMIN; permission is checked before existence), who may own
// one (the creator, a team they maintain; admins anyone), and the ProjectChanged events. Each
// change writes its event in its transaction; deleting a project deletes its role bindings and
// grants with it. Thread-safe (stateless apart from the pool and the immutable hook).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

// What a project still holds in the services that keep resources in projects: collection name
// ("environments", "experiments", ...) → how many, for `project_name` ("projects/x"); zero
// counts may be left out. An error means the answer is not known (a service could not be asked
// before `deadline`). Called without any database connection held; must be thread-safe.
using ProjectHoldings = std::function<absl::StatusOr<std::map<std::string, int64_t>>(
    const std::string& project_name, std::chrono::system_clock::time_point deadline)>;

class ProjectManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock` and `ids` must
  // outlive the manager. `holdings` empty: projects are deleted without asking anyone.
  ProjectManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, const Clock& clock,
                 IdGenerator& ids, ProjectHoldings holdings = {})
      : pool_(pool),
        idempotency_(idempotency),
        clock_(clock), ids_(ids), holdings_(std::move(holdings)) {}

  // The owner defaults to the calling user; a service acting for itself must name one
  // (INVALID_ARGUMENT "project.owner").
  absl::StatusOr<v1::Project> CreateProject(const v1::CreateProjectRequest& request,
                                            const CallInfo& call);
  absl::StatusOr<v1::Project> GetProject(const v1::GetProjectRequest& request,
                                         const CallInfo& call);
  // The projects the caller owns (directly or through a team), is bound to, or, for admins,
  // all. Page tokens are bound to the caller.
  absl::StatusOr<v1::ListProjectsResponse> ListProjects(const v1::ListProjectsRequest& request,
                                                        const CallInfo& call);
  absl::StatusOr<v1::Project> UpdateProject(const v1::UpdateProjectRequest& request,
                                            const CallInfo& call);
  // Needs ADMIN on the project. Then, with no connection held, asks the holdings hook: a project
  // that still holds anything is refused with FAILED_PRECONDITION, reason PROJECT_NOT_EMPTY,
  // naming what it holds in the message (`project "projects/x" still holds 3 environments`) and
  // in ErrorInfo metadata ("project", and each collection → its count); when the hook fails the
  // deletion is refused too (fail closed): UNAVAILABLE, reason PROJECT_HOLDINGS_UNKNOWN (the
  // hook's error is logged, not returned). The check and the deletion are not atomic: a resource
  // created in another service in between outlives the project (services refuse to create in a
  // project that no longer exists, so the window closes with the deletion).
  absl::Status DeleteProject(const v1::DeleteProjectRequest& request, const CallInfo& call);

 private:
  // OK when the hook says `name` holds nothing (or there is no hook).
  absl::Status CheckEmpty(const std::string& name, const CallInfo& call) const;

  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  const Clock& clock_;
  IdGenerator& ids_;
  const ProjectHoldings holdings_;
};

}  // namespace submarine::permission
