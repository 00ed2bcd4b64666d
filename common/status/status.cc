#include "common/status/status.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"

namespace submarine {
namespace {

constexpr char kErrorInfoUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

std::string DefaultReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument: return "INVALID_FIELD";
    case absl::StatusCode::kNotFound: return "RESOURCE_NOT_FOUND";
    case absl::StatusCode::kAlreadyExists: return "RESOURCE_ALREADY_EXISTS";
    case absl::StatusCode::kUnavailable: return "DEPENDENCY_UNAVAILABLE";
    default: return std::string(CodeName(static_cast<int>(code)));
  }
}

// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
size_t Utf8Length(const std::string& s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  // Overlong encodings, surrogates and code points past U+10FFFF are invalid too.
  if (n == 2 && c < 0xC2) return 0;
  if (n == 3) {
    unsigned char c1 = byte(i + 1);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return 0;
  }
  if (n == 4) {
    unsigned char c1 = byte(i + 1);
    if ((c == 0xF0 && c1 < 0x90) || c > 0xF4 || (c == 0xF4 && c1 >= 0x90)) return 0;
  }
  return n;
}

}  // namespace

bool IsValidUtf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8Length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string QuoteInput(const std::string& input, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(input.size(), max_bytes) + 8);
  for (size_t i = 0; i < input.size();) {
    size_t n = Utf8Length(input, i);
    std::string piece;
    if (n == 0) {
      piece = "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      n = 1;
    } else if (n == 1 && (static_cast<unsigned char>(input[i]) < 0x20 || input[i] == 0x7F)) {
      char c = input[i];
      piece = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : "";
      if (piece.empty()) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(c));
        piece = buf;
      }
    } else {
      piece = input.substr(i, n);
    }
    if (out.size() + piece.size() > max_bytes) return out + "...";
    out += piece;
    i += n;
  }
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
                   absl::StrCat(what, " \"", name, "\" not found"),
                   {{"resource", name}});
}

absl::Status AlreadyExists(const std::string& what, const std::string& name) {
  return MakeError(absl::StatusCode::kAlreadyExists, "RESOURCE_ALREADY_EXISTS",
                   absl::StrCat(what, " \"", name, "\" already exists"),
                   {{"resource", name}});
}

absl::Status Unavailable(const std::string& message) {
  return MakeError(absl::StatusCode::kUnavailable, "DEPENDENCY_UNAVAILABLE", message);
}

absl::Status Internal(const std::string& message) {
  return MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR", message);
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
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN";
  return kNames[code];
}

int HttpStatusForCode(int code) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED: return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::UNIMPLEMENTED: return 501;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

}  // namespace submarine
