#pragma once
// gRPC adapters of the permission service: IdentityService, AccessService and the Apache
// Submarine compatible SubmarineAuthApi (/api/auth/*, /api/sys/user/info). They verify the
// caller's principal (a forged or unverifiable principal is UNAUTHENTICATED on every method),
// require an authenticated caller except on the auth_exempt methods (Login, RefreshToken), and
// translate protos and statuses around the managers (identity.h, access_manager.h). They never
// throw.

#include "services/permission/access_manager.h"
#include "services/permission/identity.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "submarine/permission/v1/submarine_v1.grpc.pb.h"

namespace submarine::permission {

inline constexpr char kErrorDomain[] = "permission.submarine.io";

class IdentityServiceImpl final : public v1::IdentityService::Service {
 public:
  // `identity` must outlive the service.
  explicit IdentityServiceImpl(Identity* identity) : identity_(identity) {}

  grpc::Status Login(grpc::ServerContext*, const v1::LoginRequest*, v1::LoginResponse*) override;
  grpc::Status RefreshToken(grpc::ServerContext*, const v1::RefreshTokenRequest*,
                            v1::LoginResponse*) override;
  grpc::Status Logout(grpc::ServerContext*, const v1::LogoutRequest*, v1::LogoutResponse*) override;
  grpc::Status GetCurrentUser(grpc::ServerContext*, const v1::GetCurrentUserRequest*,
                              v1::User*) override;
  grpc::Status GetUser(grpc::ServerContext*, const v1::GetUserRequest*, v1::User*) override;
  grpc::Status ListUsers(grpc::ServerContext*, const v1::ListUsersRequest*,
                         v1::ListUsersResponse*) override;
  grpc::Status CreateUser(grpc::ServerContext*, const v1::CreateUserRequest*, v1::User*) override;
  grpc::Status UpdateUser(grpc::ServerContext*, const v1::UpdateUserRequest*, v1::User*) override;
  grpc::Status DeleteUser(grpc::ServerContext*, const v1::DeleteUserRequest*,
                          v1::DeleteUserResponse*) override;
  grpc::Status SetPassword(grpc::ServerContext*, const v1::SetPasswordRequest*,
                           v1::SetPasswordResponse*) override;
  grpc::Status CreateTeam(grpc::ServerContext*, const v1::CreateTeamRequest*, v1::Team*) override;
  grpc::Status GetTeam(grpc::ServerContext*, const v1::GetTeamRequest*, v1::Team*) override;
  grpc::Status ListTeams(grpc::ServerContext*, const v1::ListTeamsRequest*,
                         v1::ListTeamsResponse*) override;
  grpc::Status DeleteTeam(grpc::ServerContext*, const v1::DeleteTeamRequest*,
                          v1::DeleteTeamResponse*) override;
  grpc::Status SetTeamMember(grpc::ServerContext*, const v1::SetTeamMemberRequest*,
                             v1::TeamMember*) override;
  grpc::Status RemoveTeamMember(grpc::ServerContext*, const v1::RemoveTeamMemberRequest*,
                                v1::RemoveTeamMemberResponse*) override;
  grpc::Status ListTeamMembers(grpc::ServerContext*, const v1::ListTeamMembersRequest*,
                               v1::ListTeamMembersResponse*) override;
  grpc::Status CreateProject(grpc::ServerContext*, const v1::CreateProjectRequest*,
                             v1::Project*) override;
  grpc::Status GetProject(grpc::ServerContext*, const v1::GetProjectRequest*,
                          v1::Project*) override;
  grpc::Status ListProjects(grpc::ServerContext*, const v1::ListProjectsRequest*,
                            v1::ListProjectsResponse*) override;
  grpc::Status UpdateProject(grpc::ServerContext*, const v1::UpdateProjectRequest*,
                             v1::Project*) override;
  grpc::Status DeleteProject(grpc::ServerContext*, const v1::DeleteProjectRequest*,
                             v1::DeleteProjectResponse*) override;
  grpc::Status CreateApiToken(grpc::ServerContext*, const v1::CreateApiTokenRequest*,
                              v1::CreateApiTokenResponse*) override;
  grpc::Status ListApiTokens(grpc::ServerContext*, const v1::ListApiTokensRequest*,
                             v1::ListApiTokensResponse*) override;
  grpc::Status RevokeApiToken(grpc::ServerContext*, const v1::RevokeApiTokenRequest*,
                              v1::ApiToken*) override;
  grpc::Status GetAuthState(grpc::ServerContext*, const v1::GetAuthStateRequest*,
                            v1::AuthState*) override;

 private:
  Identity* identity_;
};

class AccessServiceImpl final : public v1::AccessService::Service {
 public:
  explicit AccessServiceImpl(AccessManager* manager) : m_(manager) {}

  grpc::Status CreateRoleBinding(grpc::ServerContext*, const v1::CreateRoleBindingRequest*,
                                 v1::RoleBinding*) override;
  grpc::Status ListRoleBindings(grpc::ServerContext*, const v1::ListRoleBindingsRequest*,
                                v1::ListRoleBindingsResponse*) override;
  grpc::Status DeleteRoleBinding(grpc::ServerContext*, const v1::DeleteRoleBindingRequest*,
                                 v1::DeleteRoleBindingResponse*) override;
  grpc::Status CreateGrant(grpc::ServerContext*, const v1::CreateGrantRequest*,
                           v1::Grant*) override;
  grpc::Status ListGrants(grpc::ServerContext*, const v1::ListGrantsRequest*,
                          v1::ListGrantsResponse*) override;
  grpc::Status DeleteGrant(grpc::ServerContext*, const v1::DeleteGrantRequest*,
                           v1::DeleteGrantResponse*) override;
  grpc::Status CheckPermission(grpc::ServerContext*, const v1::CheckPermissionRequest*,
                               v1::CheckPermissionResponse*) override;
  grpc::Status BatchCheckPermissions(grpc::ServerContext*, const v1::BatchCheckPermissionsRequest*,
                                     v1::BatchCheckPermissionsResponse*) override;
  grpc::Status ListAccessible(grpc::ServerContext*, const v1::ListAccessibleRequest*,
                              v1::ListAccessibleResponse*) override;

 private:
  AccessManager* m_;
};

// Failed logins answer HTTP 401 {"success": false, "message": "User Not Found. Please try
// again!"} as Apache Submarine did (an OK gRPC answer whose envelope carries code 401).
class SubmarineAuthApiImpl final : public v1::SubmarineAuthApi::Service {
 public:
  // `identity` must outlive the service.
  explicit SubmarineAuthApiImpl(Identity* identity) : identity_(identity) {}

  grpc::Status Login(grpc::ServerContext*, const v1::SubmarineLoginRequest*,
                     submarine::common::v1::SubmarineV1Response*) override;
  grpc::Status GetToken(grpc::ServerContext*, const v1::SubmarineLoginRequest*,
                        submarine::common::v1::SubmarineV1Response*) override;
  grpc::Status Logout(grpc::ServerContext*, const v1::SubmarineLogoutRequest*,
                      submarine::common::v1::SubmarineV1Response*) override;
  grpc::Status GetUserInfo(grpc::ServerContext*, const v1::SubmarineUserInfoRequest*,
                           submarine::common::v1::SubmarineV1Response*) override;

 private:
  Identity* identity_;
};

}  // namespace submarine::permission
