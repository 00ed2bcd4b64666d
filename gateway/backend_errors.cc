#include "gateway/backend_errors.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "gateway/transcoder.h"

namespace submarine::gateway {

bool IsTransportError(const grpc::Status& status) {
  switch (status.error_code()) {
    // The codes gRPC itself raises (grpc/doc/statuscodes.md); the others only a service can.
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::UNAUTHENTICATED: {
      google::rpc::Status details;
      return !(DecodeStatusDetails(status, &details) && details.details_size() > 0);
    }
    default:
      return false;
  }
}

namespace {

bool IsServerFault(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::INTERNAL ||
         status.error_code() == grpc::StatusCode::UNKNOWN ||
         status.error_code() == grpc::StatusCode::DATA_LOSS;
}

// A reason (UPPER_SNAKE_CASE) or domain (a DNS name) as the services write them; anything else
// is not passed on.
bool IsConstant(const std::string& s, bool domain) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = domain ? ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
                     : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok) return false;
  }
  return true;
}

grpc::Status ConcealServerFault(const std::string& service, const grpc::Status& status,
                                const std::string& request_id) {
  google::rpc::ErrorInfo original;
  google::rpc::Status details;
  if (DecodeStatusDetails(status, &details)) {
    for (const auto& any : details.details()) {
      if (any.UnpackTo(&original)) break;
    }
  }
  const std::string id = QuoteInput(request_id, 128);
  absl::Status error =
      MakeError(static_cast<absl::StatusCode>(status.error_code()),
                IsConstant(original.reason(), false) ? original.reason() : "INTERNAL_ERROR",
                absl::StrCat("internal error in ", service, "; see its log for request ", id),
                {{"service", service}, {"requestId", id}});
  return ToGrpcStatus(error,
                      IsConstant(original.domain(), true) ? original.domain() : kGatewayDomain);
}

}  // namespace

bool HidesBackendText(const grpc::Status& status) {
  return !status.ok() && (IsTransportError(status) || IsServerFault(status));
}

grpc::Status ClientFacingBackendError(const std::string& service, const grpc::Status& status,
                                      std::chrono::milliseconds timeout,
                                      const std::string& request_id) {
  if (!IsTransportError(status)) {
    return IsServerFault(status) ? ConcealServerFault(service, status, request_id) : status;
  }
  absl::Status error;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      error = MakeError(absl::StatusCode::kUnavailable, "BACKEND_UNAVAILABLE",
                        absl::StrCat("The backend of ", service, " is unavailable; retry later"),
                        {{"service", service}});
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (timeout.count() > 0) {
        error = MakeError(absl::StatusCode::kDeadlineExceeded, "BACKEND_DEADLINE_EXCEEDED",
                          absl::StrCat("The backend of ", service, " did not answer within ",
                                       timeout.count(), " ms"),
                          {{"service", service}, {"timeoutMs", absl::StrCat(timeout.count())}});
      } else {
        error = MakeError(
            absl::StatusCode::kDeadlineExceeded, "BACKEND_DEADLINE_EXCEEDED",
            absl::StrCat("The backend of ", service, " did not answer before the call's deadline"),
            {{"service", service}});
      }
      break;
    default: {
      auto code = status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
                      ? absl::StatusCode::kInternal
                      : static_cast<absl::StatusCode>(status.error_code());
      error = MakeError(
          code, "BACKEND_ERROR",
          absl::StrCat("The call to ", service, " failed (", CodeName(status.error_code()),
                       "); the gateway logged the details with the request id"),
          {{"service", service}});
    }
  }
  return ToGrpcStatus(error, kGatewayDomain);
}

}  // namespace submarine::gateway
