#pragma once
// Errors inside Submarine are absl::Status values carrying one google.rpc.ErrorInfo (reason,
// domain, metadata) as a payload; ToGrpcStatus() at the transport edge turns them into a gRPC
// status whose details hold a google.rpc.Status with that ErrorInfo, as AIP-193 asks.

#include <grpcpp/support/status.h>

#include <initializer_list>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace submarine {

inline constexpr size_t kMaxErrorMessageBytes = 1024;
inline constexpr size_t kMaxErrorMetadataBytes = 256;

// Builds a status with an ErrorInfo. `metadata` keys are lowerCamel and should hold every dynamic
// value of `message` (e.g. {"field", "environment.image"}).
absl::Status MakeError(absl::StatusCode code, const std::string& reason, const std::string& message,
                       std::initializer_list<std::pair<std::string, std::string>> metadata = {});

// Shorthands for the common cases; `field` is the request field path, named in the message too.
absl::Status InvalidField(const std::string& field, const std::string& problem);
absl::Status NotFound(const std::string& what, const std::string& name);
absl::Status AlreadyExists(const std::string& what, const std::string& name);
absl::Status Unavailable(const std::string& message);
absl::Status Internal(const std::string& message);

// The answer to a client when what went wrong must stay in a log: database and exception text
// names tables, constraints, queries, addresses and library internals, and never reaches a
// client. INTERNAL, reason INTERNAL_ERROR, message "internal error; see the <log_name> log for
// request <request_id>" and metadata {requestId} — or "internal error; see the <log_name> log"
// when `request_id` is empty. The caller logs the details; the log line carries the same id.
absl::Status ConcealedInternal(const std::string& request_id,
                               const std::string& log_name = "service");

// How user input appears in an error message or its metadata: valid UTF-8 (invalid bytes become
// U+FFFD), control characters escaped (\n, \x01), and at most `max_bytes` of it, cut on a
// character boundary and followed by "..." when longer. An error never echoes a whole request
// field: a long value would inflate every log line and the grpc-status-details-bin header.
std::string QuoteInput(const std::string& input, size_t max_bytes = 64);
// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): what protobuf requires of every string field.
bool IsValidUtf8(const std::string& text);

// The ErrorInfo attached to `status`, if any.
bool GetErrorInfo(const absl::Status& status, google::rpc::ErrorInfo* out);

// Converts at the gRPC edge. `domain` (e.g. "environment.submarine.io") fills ErrorInfo.domain
// when the status carries none; a status without ErrorInfo gets a reason derived from its code.
// As a last line of defence the message is cut to kMaxErrorMessageBytes and every metadata value
// to kMaxErrorMetadataBytes (QuoteInput), so no error can exceed gRPC's metadata limits or carry
// invalid UTF-8.
grpc::Status ToGrpcStatus(const absl::Status& status, const std::string& domain);

// The reverse, for clients of other services: keeps code, message and ErrorInfo.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Decodes grpc-status-details-bin of a gRPC status into google.rpc.Status (false if absent).
bool DecodeStatusDetails(const grpc::Status& status, google::rpc::Status* out);

// Canonical upper-case name of a code, e.g. "NOT_FOUND".
const char* CodeName(int grpc_code);
// The status message as a std::string (absl::string_view here is not std::string_view).
inline std::string Message(const absl::Status& s) { return std::string(s.message()); }
// AIP-193 HTTP status for a gRPC code.
int HttpStatusForCode(int grpc_code);

}  // namespace submarine

// Propagates an error status out of the current function.
#define SUBMARINE_RETURN_IF_ERROR(expr)       \
  do {                                        \
    ::absl::Status _st = (expr);              \
    if (!_st.ok()) return _st;                \
  } while (0)

#define SUBMARINE_CONCAT_INNER(a, b) a##b
#define SUBMARINE_CONCAT(a, b) SUBMARINE_CONCAT_INNER(a, b)
// Assigns the value of a StatusOr expression or returns its error.
#define SUBMARINE_ASSIGN_OR_RETURN(lhs, expr) \
  SUBMARINE_ASSIGN_OR_RETURN_IMPL(SUBMARINE_CONCAT(_status_or_, __LINE__), lhs, expr)
#define SUBMARINE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()
