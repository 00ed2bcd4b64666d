#include "common/status/status.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/util/text.h"
#include "google/rpc/status.pb.h"

namespace submarine {
namespace {

constexpr char kErrorInfoUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

std::string DefaultReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_FIELD";
    case absl::StatusCode::kNotFound:
      return "RESOURCE_NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "RESOURCE_ALREADY_EXISTS";
    case absl::StatusCode::kUnavailable:
      return "DEPENDENCY_UNAVAILABLE";
    default:
      return std::string(CodeName(static_cast<int>(code)));
  }
}

}  // namespace

bool IsValidUtf8(const std::string& text) { return text::IsValidUtf8(text); }

std::string QuoteInput(const std::string& input, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(input.size(), max_bytes) + 3);
  if (!text::AppendEscaped(input, &out, max_bytes)) out += "...";
  return out;
}

absl::Status MakeError(absl::StatusCode code, const std::string& reason, const std::string& message,
                       std::initializer_list<std::pair<std::string, std::string>> metadata) {
  absl::Status st(code, message);
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  for (const auto& [k, v] : metadata) {
    (*info.mutable_metadata())[k] = QuoteInput(v, kMaxErrorMetadataBytes);
  }
  st.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
  return st;
}

absl::Status InvalidField(const std::string& field, const std::string& problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FIELD",
                   absl::StrCat(field, ": ", problem), {{"field", field}});
}

absl::Status NotFound(const std::string& what, const std::string& name) {
  return MakeError(absl::StatusCode::kNotFound, "RESOURCE_NOT_FOUND",
                   absl::StrCat(what, " \"", name, "\" not found"), {{"resource", name}});
}

absl::Status AlreadyExists(const std::string& what, const std::string& name) {
  return MakeError(absl::StatusCode::kAlreadyExists, "RESOURCE_ALREADY_EXISTS",
                   absl::StrCat(what, " \"", name, "\" already exists"), {{"resource", name}});
}

absl::Status Unavailable(const std::string& message) {
  return MakeError(absl::StatusCode::kUnavailable, "DEPENDENCY_UNAVAILABLE", message);
}

absl::Status Internal(const std::string& message) {
  return MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR", message);
}

absl::Status ConcealedInternal(const std::string& request_id, const std::string& log_name) {
  if (request_id.empty()) {
    return Internal(absl::StrCat("internal error; see the ", log_name, " log"));
  }
  // The id as it would be quoted anywhere else: bounded, escaped (the services validate ids at
  // their edge, but this must hold whatever the caller passes).
  const std::string id = QuoteInput(request_id, 128);
  return MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR",
                   absl::StrCat("internal error; see the ", log_name, " log for request ", id),
                   {{"requestId", id}});
}

bool GetErrorInfo(const absl::Status& status, google::rpc::ErrorInfo* out) {
  auto payload = status.GetPayload(kErrorInfoUrl);
  if (!payload) return false;
  return out->ParseFromString(std::string(*payload));
}

grpc::Status ToGrpcStatus(const absl::Status& status, const std::string& domain) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::ErrorInfo info;
  if (!GetErrorInfo(status, &info)) info.set_reason(DefaultReason(status.code()));
  if (info.domain().empty()) info.set_domain(domain);
  for (auto& [key, value] : *info.mutable_metadata()) {
    value = QuoteInput(value, kMaxErrorMetadataBytes);
  }
  std::string message = QuoteInput(Message(status), kMaxErrorMessageBytes);
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(message);
  rpc.add_details()->PackFrom(info);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      rpc.SerializeAsString());
}

bool DecodeStatusDetails(const grpc::Status& status, google::rpc::Status* out) {
  if (status.error_details().empty()) return false;
  return out->ParseFromString(status.error_details());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status st(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status rpc;
  if (DecodeStatusDetails(status, &rpc)) {
    for (const auto& any : rpc.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info)) {
        st.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
        break;
      }
    }
  }
  return st;
}

const char* CodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN";
  return kNames[code];
}

int HttpStatusForCode(int code) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

}  // namespace submarine
