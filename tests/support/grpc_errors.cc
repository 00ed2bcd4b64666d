#include "tests/support/grpc_errors.h"

#include "common/status/status.h"

namespace submarine::testing {

google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (!DecodeStatusDetails(status, &details)) return info;
  for (const auto& any : details.details()) {
    if (any.UnpackTo(&info)) break;
  }
  return info;
}

std::string ErrorReason(const grpc::Status& status) { return ErrorInfoOf(status).reason(); }

std::string ErrorField(const grpc::Status& status) {
  auto info = ErrorInfoOf(status);
  auto it = info.metadata().find("field");
  return it == info.metadata().end() ? "" : it->second;
}

std::string ErrorReason(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(status, &info) ? info.reason() : "";
}

}  // namespace submarine::testing
