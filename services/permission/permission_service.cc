#include "services/permission/permission_service.h"

#include "absl/strings/str_cat.h"
#include "common/api/json_value.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

using google::protobuf::Value;
using submarine::common::v1::SubmarineV1Response;

// Runs `body` for an admitted call (rpc::HandleCall; who may call what is the interceptor's
// decision, from the methods' auth_exempt/internal_only options).
template <class F>
grpc::Status Handle(grpc::ServerContext* ctx, F&& body) {
  return rpc::HandleCall(*ctx, kErrorDomain, std::forward<F>(body));
}

using rpc::Fill;

}  // namespace

// ---- IdentityService

grpc::Status IdentityServiceImpl::Login(grpc::ServerContext* ctx, const v1::LoginRequest* req,
                                        v1::LoginResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().Login(req->username(), req->password(), call), resp);
  });
}

grpc::Status IdentityServiceImpl::RefreshToken(grpc::ServerContext* ctx,
                                               const v1::RefreshTokenRequest* req,
                                               v1::LoginResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().Refresh(req->refresh_token(), call), resp);
  });
}

grpc::Status IdentityServiceImpl::Logout(grpc::ServerContext* ctx, const v1::LogoutRequest* req,
                                         v1::LogoutResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->sessions().Logout(*req, call);
  });
}

grpc::Status IdentityServiceImpl::GetCurrentUser(grpc::ServerContext* ctx,
                                                 const v1::GetCurrentUserRequest* req,
                                                 v1::User* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->users().GetCurrentUser(call), resp);
  });
}

grpc::Status IdentityServiceImpl::GetUser(grpc::ServerContext* ctx, const v1::GetUserRequest* req,
                                          v1::User* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->users().GetUser(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::ListUsers(grpc::ServerContext* ctx,
                                            const v1::ListUsersRequest* req,
                                            v1::ListUsersResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->users().ListUsers(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::CreateUser(grpc::ServerContext* ctx,
                                             const v1::CreateUserRequest* req, v1::User* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->users().CreateUser(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::UpdateUser(grpc::ServerContext* ctx,
                                             const v1::UpdateUserRequest* req, v1::User* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->users().UpdateUser(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::DeleteUser(grpc::ServerContext* ctx,
                                             const v1::DeleteUserRequest* req,
                                             v1::DeleteUserResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->users().DeleteUser(*req, call);
  });
}

grpc::Status IdentityServiceImpl::SetPassword(grpc::ServerContext* ctx,
                                              const v1::SetPasswordRequest* req,
                                              v1::SetPasswordResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->users().SetPassword(*req, call);
  });
}

grpc::Status IdentityServiceImpl::CreateTeam(grpc::ServerContext* ctx,
                                             const v1::CreateTeamRequest* req, v1::Team* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->teams().CreateTeam(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::GetTeam(grpc::ServerContext* ctx, const v1::GetTeamRequest* req,
                                          v1::Team* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->teams().GetTeam(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::ListTeams(grpc::ServerContext* ctx,
                                            const v1::ListTeamsRequest* req,
                                            v1::ListTeamsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->teams().ListTeams(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::DeleteTeam(grpc::ServerContext* ctx,
                                             const v1::DeleteTeamRequest* req,
                                             v1::DeleteTeamResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->teams().DeleteTeam(*req, call);
  });
}

grpc::Status IdentityServiceImpl::SetTeamMember(grpc::ServerContext* ctx,
                                                const v1::SetTeamMemberRequest* req,
                                                v1::TeamMember* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->teams().SetTeamMember(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::RemoveTeamMember(grpc::ServerContext* ctx,
                                                   const v1::RemoveTeamMemberRequest* req,
                                                   v1::RemoveTeamMemberResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->teams().RemoveTeamMember(*req, call);
  });
}

grpc::Status IdentityServiceImpl::ListTeamMembers(grpc::ServerContext* ctx,
                                                  const v1::ListTeamMembersRequest* req,
                                                  v1::ListTeamMembersResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->teams().ListTeamMembers(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::CreateProject(grpc::ServerContext* ctx,
                                                const v1::CreateProjectRequest* req,
                                                v1::Project* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->projects().CreateProject(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::GetProject(grpc::ServerContext* ctx,
                                             const v1::GetProjectRequest* req, v1::Project* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->projects().GetProject(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::ListProjects(grpc::ServerContext* ctx,
                                               const v1::ListProjectsRequest* req,
                                               v1::ListProjectsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->projects().ListProjects(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::UpdateProject(grpc::ServerContext* ctx,
                                                const v1::UpdateProjectRequest* req,
                                                v1::Project* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->projects().UpdateProject(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::DeleteProject(grpc::ServerContext* ctx,
                                                const v1::DeleteProjectRequest* req,
                                                v1::DeleteProjectResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return identity_->projects().DeleteProject(*req, call);
  });
}

grpc::Status IdentityServiceImpl::CreateApiToken(grpc::ServerContext* ctx,
                                                 const v1::CreateApiTokenRequest* req,
                                                 v1::CreateApiTokenResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().CreateApiToken(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::ListApiTokens(grpc::ServerContext* ctx,
                                                const v1::ListApiTokensRequest* req,
                                                v1::ListApiTokensResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().ListApiTokens(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::RevokeApiToken(grpc::ServerContext* ctx,
                                                 const v1::RevokeApiTokenRequest* req,
                                                 v1::ApiToken* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().RevokeApiToken(*req, call), resp);
  });
}

grpc::Status IdentityServiceImpl::GetAuthState(grpc::ServerContext* ctx,
                                               const v1::GetAuthStateRequest* req,
                                               v1::AuthState* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(identity_->sessions().GetAuthState(call), resp);
  });
}

// ---- AccessService

grpc::Status AccessServiceImpl::CreateRoleBinding(grpc::ServerContext* ctx,
                                                  const v1::CreateRoleBindingRequest* req,
                                                  v1::RoleBinding* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->CreateRoleBinding(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::ListRoleBindings(grpc::ServerContext* ctx,
                                                 const v1::ListRoleBindingsRequest* req,
                                                 v1::ListRoleBindingsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->ListRoleBindings(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::DeleteRoleBinding(grpc::ServerContext* ctx,
                                                  const v1::DeleteRoleBindingRequest* req,
                                                  v1::DeleteRoleBindingResponse* resp) {
  return Handle(
      ctx, [&](const CallInfo& call) -> absl::Status { return m_->DeleteRoleBinding(*req, call); });
}

grpc::Status AccessServiceImpl::CreateGrant(grpc::ServerContext* ctx,
                                            const v1::CreateGrantRequest* req, v1::Grant* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->CreateGrant(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::ListGrants(grpc::ServerContext* ctx,
                                           const v1::ListGrantsRequest* req,
                                           v1::ListGrantsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->ListGrants(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::DeleteGrant(grpc::ServerContext* ctx,
                                            const v1::DeleteGrantRequest* req,
                                            v1::DeleteGrantResponse* resp) {
  return Handle(ctx,
                [&](const CallInfo& call) -> absl::Status { return m_->DeleteGrant(*req, call); });
}

grpc::Status AccessServiceImpl::CheckPermission(grpc::ServerContext* ctx,
                                                const v1::CheckPermissionRequest* req,
                                                v1::CheckPermissionResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->CheckPermission(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::BatchCheckPermissions(grpc::ServerContext* ctx,
                                                      const v1::BatchCheckPermissionsRequest* req,
                                                      v1::BatchCheckPermissionsResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->BatchCheckPermissions(*req, call), resp);
  });
}

grpc::Status AccessServiceImpl::ListAccessible(grpc::ServerContext* ctx,
                                               const v1::ListAccessibleRequest* req,
                                               v1::ListAccessibleResponse* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    return Fill(m_->ListAccessible(*req, call), resp);
  });
}

// ---- SubmarineAuthApi

namespace {

constexpr char kLoginFailed[] = "User Not Found. Please try again!";

using api::json::Bool;
using api::json::Null;
using api::json::Num;
using api::json::Str;

void Envelope(SubmarineV1Response* resp, int code, const std::string& status, bool success,
              const std::string& message, Value result) {
  resp->set_status(status);
  resp->set_code(code);
  *resp->mutable_success() = Bool(success);
  *resp->mutable_message() = message.empty() ? Null() : Str(message);
  *resp->mutable_result() = std::move(result);
  resp->mutable_attributes();
}

std::string Username(const v1::User& user) { return user.name().substr(6); }

double Millis(const google::protobuf::Timestamp& ts) {
  return static_cast<double>(ts.seconds()) * 1000 + ts.nanos() / 1000000;
}

// SysUserEntity with its token (Apache Submarine's /api/auth/login result).
Value SysUser(const v1::User& user, const std::string& token) {
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  f["id"] = Str(Username(user));
  f["createBy"] = Null();
  f["createTime"] = Num(Millis(user.create_time()));
  f["updateBy"] = Null();
  f["updateTime"] = Num(Millis(user.update_time()));
  f["userName"] = Str(Username(user));
  f["realName"] = Str(user.display_name());
  f["password"] = Str("******");
  f["avatar"] = Null();
  f["sex"] = Null();
  f["status"] = Null();
  f["phone"] = Null();
  f["email"] = user.email().empty() ? Null() : Str(user.email());
  f["deptCode"] = Null();
  f["deptName"] = Null();
  f["roleCode"] = Str(user.admin() ? "admin" : "user");
  f["birthday"] = Null();
  f["deleted"] = Num(0);
  f["token"] = Str(token);
  return out;
}

// UserInfo of /api/sys/user/info.
Value UserInfo(const v1::User& user) {
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  std::string role = user.admin() ? "admin" : "user";
  f["id"] = Str(Username(user));
  f["name"] = Str(user.display_name().empty() ? Username(user) : user.display_name());
  f["username"] = Str(Username(user));
  f["password"] = Str("******");
  f["avatar"] = Str("");
  f["status"] = Num(user.disabled() ? 0 : 1);
  f["telephone"] = Str("");
  f["lastLoginIp"] = Str("");
  f["lastLoginTime"] = Num(0);
  f["creatorId"] = Str("");
  f["createTime"] = Num(Millis(user.create_time()));
  f["merchantCode"] = Str("");
  f["deleted"] = Num(0);
  f["roleId"] = Str(role);
  Value r;
  auto& rf = *r.mutable_struct_value()->mutable_fields();
  rf["id"] = Str(role);
  rf["name"] = Str(role);
  rf["describe"] = Str(user.admin() ? "platform administrator" : "user");
  rf["status"] = Num(1);
  rf["creatorId"] = Str("system");
  rf["createTime"] = Num(0);
  rf["deleted"] = Num(0);
  rf["permissions"].mutable_list_value();
  f["role"] = std::move(r);
  return out;
}

// A failed login is an answer, not an error: HTTP 401 with success false. Other failures
// (database unavailable...) stay errors.
absl::Status LoginAnswer(const absl::StatusOr<v1::LoginResponse>& login, bool token_only,
                         SubmarineV1Response* resp) {
  if (!login.ok()) {
    if (login.status().code() != absl::StatusCode::kUnauthenticated) return login.status();
    Envelope(resp, 401, "UNAUTHORIZED", false, kLoginFailed, Null());
    return absl::OkStatus();
  }
  if (token_only) {
    Envelope(resp, 200, "OK", true, "Get token successfully!", Str(login->access_token()));
  } else {
    Envelope(resp, 200, "OK", true, "Login successfully!",
             SysUser(login->user(), login->access_token()));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status SubmarineAuthApiImpl::Login(grpc::ServerContext* ctx,
                                         const v1::SubmarineLoginRequest* req,
                                         SubmarineV1Response* resp) {
  return Handle(ctx, [&](const CallInfo& call) {
    return LoginAnswer(identity_->sessions().Login(req->username(), req->password(), call), false,
                       resp);
  });
}

grpc::Status SubmarineAuthApiImpl::GetToken(grpc::ServerContext* ctx,
                                            const v1::SubmarineLoginRequest* req,
                                            SubmarineV1Response* resp) {
  return Handle(ctx, [&](const CallInfo& call) {
    return LoginAnswer(identity_->sessions().Login(req->username(), req->password(), call), true,
                       resp);
  });
}

grpc::Status SubmarineAuthApiImpl::Logout(grpc::ServerContext* ctx,
                                          const v1::SubmarineLogoutRequest* req,
                                          SubmarineV1Response* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    SUBMARINE_RETURN_IF_ERROR(identity_->sessions().Logout(v1::LogoutRequest(), call));
    Envelope(resp, 200, "OK", true, "", Bool(true));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineAuthApiImpl::GetUserInfo(grpc::ServerContext* ctx,
                                               const v1::SubmarineUserInfoRequest* req,
                                               SubmarineV1Response* resp) {
  return Handle(ctx, [&](const CallInfo& call) -> absl::Status {
    auto user = identity_->users().GetCurrentUser(call);
    if (user.status().code() == absl::StatusCode::kNotFound) {
      Envelope(resp, 200, "OK", false, "User can not be found!", Null());
      return absl::OkStatus();
    }
    if (!user.ok()) return user.status();
    Envelope(resp, 200, "OK", true, "", UserInfo(*user));
    return absl::OkStatus();
  });
}

}  // namespace submarine::permission
