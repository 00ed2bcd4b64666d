#include "common/rpc/call_context.h"

namespace submarine::rpc {

std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

CallScope::CallScope(const grpc::ServerContextBase& ctx)
    : request_id_(Metadata(ctx, kRequestIdHeader)),
      principal_(Metadata(ctx, kPrincipalHeader)),
      deadline_(ctx.deadline()),
      bind_(request_id_) {}

}  // namespace submarine::rpc
