#pragma once
// What a handler knows about its call: the request id (x-request-id as set by the gateway, or
// generated here for a direct caller that sent none), the principal (x-submarine-principal) and
// the deadline. CallScope binds the request id to the thread so every log line carries it.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <string_view>

#include "common/log/log.h"

namespace submarine::rpc {

inline constexpr char kRequestIdHeader[] = "x-request-id";
inline constexpr char kPrincipalHeader[] = "x-submarine-principal";

// Client-chosen request ids are kept when short (≤ 128) and made of [A-Za-z0-9._:-]; the gateway
// replaces any other with a fresh one before it reaches a service or a log line.
bool AcceptableRequestId(std::string_view id);

// Value of a client metadata key, empty if absent.
std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key);

class CallScope {
 public:
  explicit CallScope(const grpc::ServerContextBase& ctx);
  const std::string& request_id() const { return request_id_; }
  const std::string& principal() const { return principal_; }
  std::chrono::system_clock::time_point deadline() const { return deadline_; }

 private:
  std::string request_id_;
  std::string principal_;
  std::chrono::system_clock::time_point deadline_;
  log::ScopedRequestId bind_;
};

}  // namespace submarine::rpc
