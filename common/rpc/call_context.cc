#include "common/rpc/call_context.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <typeinfo>

#include "common/status/status.h"
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
std::mutex codec_mu;
std::shared_ptr<const auth::PrincipalCodec> codec;  // guarded by codec_mu

// The caller's x-request-id, or a fresh one for a caller (not the gateway) that sent none, so
// logs and events of the call still correlate.
std::string RequestIdOf(const grpc::ServerContextBase& ctx) {
  std::string id = Metadata(ctx, kRequestIdHeader);
  return id.empty() ? IdGenerator::Secure().Uuid() : id;
}
}  // namespace

void SetPrincipalCodec(std::shared_ptr<const auth::PrincipalCodec> c) {
  std::lock_guard lock(codec_mu);
  codec = std::move(c);
}

std::shared_ptr<const auth::PrincipalCodec> GetPrincipalCodec() {
  std::lock_guard lock(codec_mu);
  return codec;
}

CallScope::CallScope(const grpc::ServerContextBase& ctx)
    : request_id_(RequestIdOf(ctx)), deadline_(ctx.deadline()), bind_(request_id_) {
  std::string encoded = Metadata(ctx, kPrincipalHeader);
  std::string mac = Metadata(ctx, kPrincipalMacHeader);
  if (encoded.empty() && mac.empty()) return;  // anonymous
  auto c = GetPrincipalCodec();
  if (c == nullptr) {
    // Nobody here can verify it, so it is not trusted: the call stays anonymous.
    principal_status_ = MakeError(absl::StatusCode::kUnauthenticated, "PRINCIPAL_MAC_INVALID",
                                  "this service has no internal secret to verify the caller");
    return;
  }
  // The MAC covers the request id as the caller sent it (services receive the gateway's).
  auto verified = c->Verify(encoded, mac, Metadata(ctx, kRequestIdHeader));
  if (!verified.ok()) {
    principal_status_ = verified.status();
    return;
  }
  principal_ = *std::move(verified);
  subject_ = auth::SubjectOf(principal_);
}

absl::Status CallScope::RequireAuthenticated() const {
  if (!principal_status_.ok()) return principal_status_;
  if (!authenticated()) {
    return MakeError(absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED",
                     "this call needs an authenticated caller");
  }
  return absl::OkStatus();
}

absl::Status EscapedException(const std::exception& e) {
  log::Get("rpc")->error("a handler threw {}; answering INTERNAL", typeid(e).name());
  return Internal("unexpected error handling the call");
}

}  // namespace submarine::rpc
