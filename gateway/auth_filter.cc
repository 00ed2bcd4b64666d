#include "gateway/auth_filter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "submarine/common/v1/options.pb.h"

namespace submarine::gateway {
namespace {

using submarine::common::v1::Principal;

void CountFailure(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  std::string reason = GetErrorInfo(status, &info) ? info.reason() : CodeName(status.raw_code());
  metrics::Registry::Global()
      .GetCounter("gateway_auth_failures_total", "Calls refused by the authentication filter",
                  absl::StrCat("reason=\"", reason, "\""))
      ->Inc();
}

}  // namespace

bool IsAuthExempt(const google::protobuf::MethodDescriptor* method) {
  return method != nullptr && method->options().GetExtension(submarine::common::v1::auth_exempt);
}

bool IsInternalOnly(const google::protobuf::MethodDescriptor* method) {
  return method != nullptr && method->options().GetExtension(submarine::common::v1::internal_only);
}

absl::Status CheckScope(const google::protobuf::MethodDescriptor* method,
                        const Principal& principal) {
  if (principal.scope().empty() || method == nullptr) return absl::OkStatus();
  // A scoped token (a workload's identity) acts inside one project: the services check each
  // resource against the scope; the permission service it may not use at all (it could mint an
  // unscoped token, or change memberships), apart from asking who it is.
  const std::string& service = method->service()->full_name();
  if (!absl::StartsWith(service, "submarine.permission.") ||
      method->full_name() == "submarine.permission.v1.IdentityService.GetCurrentUser") {
    return absl::OkStatus();
  }
  return MakeError(
      absl::StatusCode::kPermissionDenied, "TOKEN_SCOPE",
      absl::StrCat("a token scoped to ", principal.scope(), " may not call ", method->full_name()),
      {{"scope", principal.scope()}});
}

absl::StatusOr<std::optional<Principal>> AuthFilter::Authenticate(
    const google::protobuf::MethodDescriptor* method, std::string_view authorization) const {
  if (!enabled() || IsAuthExempt(method)) return std::nullopt;
  std::shared_ptr<const AuthSnapshot> snapshot = state_();
  if (snapshot == nullptr) {
    absl::Status unavailable =
        MakeError(absl::StatusCode::kUnavailable, "AUTH_STATE_UNAVAILABLE",
                  "the gateway cannot check tokens yet: the permission service has not "
                  "answered; retry shortly");
    CountFailure(unavailable);
    return unavailable;
  }
  auto principal = snapshot->Authenticate(authorization, NowUnix());
  if (!principal.ok()) {
    CountFailure(principal.status());
    return principal.status();
  }
  if (absl::Status scoped = CheckScope(method, *principal); !scoped.ok()) {
    CountFailure(scoped);
    return scoped;
  }
  return std::optional<Principal>(std::move(principal).value());
}

std::optional<Principal> AuthFilter::Identify(std::string_view authorization) const {
  if (!enabled() || authorization.empty()) return std::nullopt;
  std::shared_ptr<const AuthSnapshot> snapshot = state_();
  if (snapshot == nullptr) return std::nullopt;
  auto principal = snapshot->Authenticate(authorization, NowUnix());
  if (!principal.ok()) return std::nullopt;
  return std::move(principal).value();
}

int64_t AuthFilter::NowUnix() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
}

void AuthFilter::Attach(grpc::ClientContext* ctx, const std::optional<Principal>& principal,
                        const std::string& request_id, const std::string& method) const {
  if (principal.has_value() && codec_ != nullptr) {
    codec_->Attach(ctx, *principal, request_id, method);  // adds x-request-id too
  } else {
    ctx->AddMetadata(rpc::kRequestIdHeader, request_id);
  }
}

}  // namespace submarine::gateway
