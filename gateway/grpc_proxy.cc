#include "gateway/grpc_proxy.h"

#include <google/protobuf/descriptor.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "gateway/backend_errors.h"
#include "gateway/transcoder.h"

namespace submarine::gateway {
namespace {

std::string ToString(grpc::string_ref s) { return std::string(s.data(), s.size()); }

// The descriptor of "/package.Service/Method", or null if the gateway does not know it.
const google::protobuf::MethodDescriptor* FindMethod(const std::string& path) {
  if (path.size() < 2 || path[0] != '/') return nullptr;
  size_t slash = path.find('/', 1);
  if (slash == std::string::npos) return nullptr;
  std::string full = absl::StrCat(path.substr(1, slash - 1), ".", path.substr(slash + 1));
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full);
}

// One proxied unary call; deletes itself in OnDone.
class ProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* context, const BackendPool* backends,
            const AuthFilter* auth, std::chrono::milliseconds default_timeout)
      : context_(context), auth_(auth), default_timeout_(default_timeout) {
    const std::string& method_path = context->method();
    backend_ = backends->ForMethod(method_path);
    // A method without a descriptor cannot be checked for internal_only or auth_exempt, so it
    // is not forwarded at all.
    method_ = backend_ == nullptr ? nullptr : FindMethod(method_path);
    if (method_ == nullptr) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          absl::StrCat("the gateway serves no method ", QuoteInput(method_path))));
      return;
    }
    const google::protobuf::MethodDescriptor* method = method_;
    if (IsInternalOnly(method)) {
      Finish(ToGrpcStatus(
          MakeError(absl::StatusCode::kPermissionDenied, "INTERNAL_ONLY",
                    absl::StrCat(method->full_name(),
                                 " is for Submarine services only and is not served by the "
                                 "gateway"),
                    {{"method", method->full_name()}}),
          kGatewayDomain));
      return;
    }
    std::string authorization;
    auto it = context->client_metadata().find("authorization");
    if (it != context->client_metadata().end()) authorization = ToString(it->second);
    auto principal = auth_->Authenticate(method, authorization);
    if (!principal.ok()) {
      Finish(ToGrpcStatus(principal.status(), kGatewayDomain));
      return;
    }
    principal_ = std::move(principal).value();
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request"));
      return;
    }
    std::string& request_id = request_id_;
    for (const auto& [key, value] : context_->client_metadata()) {
      std::string k = ToString(key);
      if (IsHopByHopMetadata(k)) continue;
      if (k == rpc::kRequestIdHeader) {
        request_id = ToString(value);  // forwarded below once checked
        continue;
      }
      client_.AddMetadata(k, ToString(value));
    }
    bool generated = !rpc::AcceptableRequestId(request_id);
    if (generated) request_id = IdGenerator::Secure().Uuid();
    auto deadline = context_->deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      deadline = std::chrono::system_clock::now() + default_timeout_;
    }
    client_.set_deadline(deadline);
    auth_->Attach(&client_, principal_, request_id, context_->method());
    // A client-sent id is echoed by the server's interceptor; a generated one is added here.
    if (generated) context_->AddInitialMetadata(rpc::kRequestIdHeader, request_id);
    log::ScopedRequestId bind(request_id);
    log::Get("gateway")->debug("proxying {} to {}", context_->method(), backend_->address);
    backend_->stub->UnaryCall(&client_, context_->method(), grpc::StubOptions(), &request_,
                              &response_, [this](grpc::Status status) { OnBackendDone(status); });
  }

  void OnCancel() override { client_.TryCancel(); }

  void OnDone() override { delete this; }

 private:
  void OnBackendDone(const grpc::Status& status) {
    for (const auto& [key, value] : client_.GetServerTrailingMetadata()) {
      std::string k = ToString(key);
      if (!IsHopByHopMetadata(k)) context_->AddTrailingMetadata(k, ToString(value));
    }
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
      return;
    }
    if (HidesBackendText(status)) {
      log::ScopedRequestId bind(request_id_);
      log::Get("gateway")->warn("{} to {} failed: {}: {}", context_->method(), backend_->address,
                                CodeName(status.error_code()), status.error_message());
    }
    // The client chose the deadline (or got request_timeout, which it can read from its own
    // clock), so no timeout is quoted.
    Finish(ClientFacingBackendError(method_->service()->full_name(), status,
                                    std::chrono::milliseconds(0), request_id_));
  }

  grpc::GenericCallbackServerContext* context_;
  const AuthFilter* auth_;
  std::chrono::milliseconds default_timeout_;
  std::optional<submarine::common::v1::Principal> principal_;
  const Backend* backend_ = nullptr;
  const google::protobuf::MethodDescriptor* method_ = nullptr;
  std::string request_id_;
  grpc::ClientContext client_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

}  // namespace

bool IsHopByHopMetadata(std::string_view key) {
  return key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "content-type" ||
         key == "te" || key == "user-agent" || key == "host" || key == "accept-encoding" ||
         key == "connection" || key == "authorization" || key == rpc::kPrincipalHeader ||
         key == rpc::kPrincipalMacHeader;
}

grpc::ServerGenericBidiReactor* GrpcProxy::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new ProxyCall(context, backends_, auth_, default_timeout_);
}

}  // namespace submarine::gateway
