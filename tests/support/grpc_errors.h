#pragma once
// What a failed gRPC call says in its google.rpc.Status details, for assertions.

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "google/rpc/error_details.pb.h"

namespace submarine::testing {

// The first ErrorInfo of the call's details (empty if none).
google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status);
// Its reason, and its metadata "field" ("" if none).
std::string ErrorReason(const grpc::Status& status);
std::string ErrorField(const grpc::Status& status);
// The ErrorInfo reason of an absl status ("" if none).
std::string ErrorReason(const absl::Status& status);

}  // namespace submarine::testing
