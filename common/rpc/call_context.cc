#include "common/rpc/call_context.h"

#include <algorithm>
#include <cctype>

#include "common/util/clock.h"

namespace submarine::rpc {

bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == ':';
  });
}

std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

namespace {
// The caller's x-request-id, or a fresh one for a caller (not the gateway) that sent none, so
// logs and events of the call still correlate.
std::string RequestIdOf(const grpc::ServerContextBase& ctx) {
  std::string id = Metadata(ctx, kRequestIdHeader);
  return id.empty() ? IdGenerator::Secure().Uuid() : id;
}
}  // namespace

CallScope::CallScope(const grpc::ServerContextBase& ctx)
    : request_id_(RequestIdOf(ctx)),
      principal_(Metadata(ctx, kPrincipalHeader)),
      deadline_(ctx.deadline()),
      bind_(request_id_) {}

}  // namespace submarine::rpc
