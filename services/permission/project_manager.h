#pragma once
// ProjectManager decides everything about projects, the workspaces every asset lives in: who
// may create, read, list, update and delete them (access_evaluator.h: reading needs READ on the
// project, changing and deleting ADMIN; permission is checked before existence), who may own
// one (the creator, a team they maintain; admins anyone), and the ProjectChanged events. Each
// change writes its event in its transaction; deleting a project deletes its role bindings and
// grants with it. Thread-safe (stateless apart from the pool).

#include <string>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class ProjectManager {
 public:
  // `pool` (connections prepared with PermissionStore's statements), `clock` and `ids` must
  // outlive the manager.
  ProjectManager(db::ConnectionPool* pool, const Clock& clock, IdGenerator& ids)
      : pool_(pool), clock_(clock), ids_(ids) {}

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
  // Needs ADMIN on the project.
  absl::Status DeleteProject(const v1::DeleteProjectRequest& request, const CallInfo& call);

 private:
  db::ConnectionPool* pool_;
  const Clock& clock_;
  IdGenerator& ids_;
};

}  // namespace submarine::permission
