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

#define SUBMARINE_HANDLE(Impl, Method, Request, Response, expr)                             \
  grpc::Status Impl::Method(grpc::ServerContext* ctx, const Request* req, Response* resp) { \
    return Handle(ctx, [&](const CallInfo& call) -> absl::Status { expr; });                \
  }

// ---- IdentityService

SUBMARINE_HANDLE(IdentityServiceImpl, Login, v1::LoginRequest, v1::LoginResponse,
                 return Fill(identity_->sessions().Login(req->username(), req->password(), call),
                             resp))
SUBMARINE_HANDLE(IdentityServiceImpl, RefreshToken, v1::RefreshTokenRequest, v1::LoginResponse,
                 return Fill(identity_->sessions().Refresh(req->refresh_token(), call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, Logout, v1::LogoutRequest, v1::LogoutResponse, (void)resp;
                 return identity_->sessions().Logout(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, GetCurrentUser, v1::GetCurrentUserRequest, v1::User,
                 (void)req;
                 return Fill(identity_->users().GetCurrentUser(call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, GetUser, v1::GetUserRequest, v1::User,
                 return Fill(identity_->users().GetUser(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, ListUsers, v1::ListUsersRequest, v1::ListUsersResponse,
                 return Fill(identity_->users().ListUsers(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, CreateUser, v1::CreateUserRequest, v1::User,
                 return Fill(identity_->users().CreateUser(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, UpdateUser, v1::UpdateUserRequest, v1::User,
                 return Fill(identity_->users().UpdateUser(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, DeleteUser, v1::DeleteUserRequest, v1::DeleteUserResponse,
                 (void)resp;
                 return identity_->users().DeleteUser(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, SetPassword, v1::SetPasswordRequest, v1::SetPasswordResponse,
                 (void)resp;
                 return identity_->users().SetPassword(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, CreateTeam, v1::CreateTeamRequest, v1::Team,
                 return Fill(identity_->teams().CreateTeam(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, GetTeam, v1::GetTeamRequest, v1::Team,
                 return Fill(identity_->teams().GetTeam(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, ListTeams, v1::ListTeamsRequest, v1::ListTeamsResponse,
                 return Fill(identity_->teams().ListTeams(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, DeleteTeam, v1::DeleteTeamRequest, v1::DeleteTeamResponse,
                 (void)resp;
                 return identity_->teams().DeleteTeam(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, SetTeamMember, v1::SetTeamMemberRequest, v1::TeamMember,
                 return Fill(identity_->teams().SetTeamMember(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, RemoveTeamMember, v1::RemoveTeamMemberRequest,
                 v1::RemoveTeamMemberResponse, (void)resp;
                 return identity_->teams().RemoveTeamMember(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, ListTeamMembers, v1::ListTeamMembersRequest,
                 v1::ListTeamMembersResponse,
                 return Fill(identity_->teams().ListTeamMembers(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, CreateProject, v1::CreateProjectRequest, v1::Project,
                 return Fill(identity_->projects().CreateProject(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, GetProject, v1::GetProjectRequest, v1::Project,
                 return Fill(identity_->projects().GetProject(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, ListProjects, v1::ListProjectsRequest,
                 v1::ListProjectsResponse,
                 return Fill(identity_->projects().ListProjects(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, UpdateProject, v1::UpdateProjectRequest, v1::Project,
                 return Fill(identity_->projects().UpdateProject(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, DeleteProject, v1::DeleteProjectRequest,
                 v1::DeleteProjectResponse, (void)resp;
                 return identity_->projects().DeleteProject(*req, call))
SUBMARINE_HANDLE(IdentityServiceImpl, CreateApiToken, v1::CreateApiTokenRequest,
                 v1::CreateApiTokenResponse,
                 return Fill(identity_->sessions().CreateApiToken(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, ListApiTokens, v1::ListApiTokensRequest,
                 v1::ListApiTokensResponse,
                 return Fill(identity_->sessions().ListApiTokens(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, RevokeApiToken, v1::RevokeApiTokenRequest, v1::ApiToken,
                 return Fill(identity_->sessions().RevokeApiToken(*req, call), resp))
SUBMARINE_HANDLE(IdentityServiceImpl, GetAuthState, v1::GetAuthStateRequest, v1::AuthState,
                 (void)req;
                 return Fill(identity_->sessions().GetAuthState(call), resp))

// ---- AccessService

SUBMARINE_HANDLE(AccessServiceImpl, CreateRoleBinding, v1::CreateRoleBindingRequest,
                 v1::RoleBinding, return Fill(m_->CreateRoleBinding(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, ListRoleBindings, v1::ListRoleBindingsRequest,
                 v1::ListRoleBindingsResponse, return Fill(m_->ListRoleBindings(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, DeleteRoleBinding, v1::DeleteRoleBindingRequest,
                 v1::DeleteRoleBindingResponse, (void)resp;
                 return m_->DeleteRoleBinding(*req, call))
SUBMARINE_HANDLE(AccessServiceImpl, CreateGrant, v1::CreateGrantRequest, v1::Grant,
                 return Fill(m_->CreateGrant(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, ListGrants, v1::ListGrantsRequest, v1::ListGrantsResponse,
                 return Fill(m_->ListGrants(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, DeleteGrant, v1::DeleteGrantRequest, v1::DeleteGrantResponse,
                 (void)resp;
                 return m_->DeleteGrant(*req, call))
SUBMARINE_HANDLE(AccessServiceImpl, CheckPermission, v1::CheckPermissionRequest,
                 v1::CheckPermissionResponse, return Fill(m_->CheckPermission(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, BatchCheckPermissions, v1::BatchCheckPermissionsRequest,
                 v1::BatchCheckPermissionsResponse,
                 return Fill(m_->BatchCheckPermissions(*req, call), resp))
SUBMARINE_HANDLE(AccessServiceImpl, ListAccessible, v1::ListAccessibleRequest,
                 v1::ListAccessibleResponse, return Fill(m_->ListAccessible(*req, call), resp))

#undef SUBMARINE_HANDLE

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
