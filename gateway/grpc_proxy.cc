#include "gateway/grpc_proxy.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"

namespace submarine::gateway {
namespace {

std::string ToString(grpc::string_ref s) { return std::string(s.data(), s.size()); }

// One proxied unary call; deletes itself in OnDone.
class ProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* context, const BackendPool* backends,
            std::chrono::milliseconds default_timeout)
      : context_(context), default_timeout_(default_timeout) {
    backend_ = backends->ForMethod(context->method());
    if (backend_ == nullptr) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          absl::StrCat("the gateway serves no method ", context->method())));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request"));
      return;
    }
    std::string request_id;
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
    client_.AddMetadata(rpc::kRequestIdHeader, request_id);
    // A client-sent id is echoed by the server's interceptor; a generated one is added here.
    if (generated) context_->AddInitialMetadata(rpc::kRequestIdHeader, request_id);
    auto deadline = context_->deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      deadline = std::chrono::system_clock::now() + default_timeout_;
    }
    client_.set_deadline(deadline);
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
    } else {
      Finish(status);
    }
  }

  grpc::GenericCallbackServerContext* context_;
  std::chrono::milliseconds default_timeout_;
  const Backend* backend_ = nullptr;
  grpc::ClientContext client_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

}  // namespace

bool IsHopByHopMetadata(std::string_view key) {
  return key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "content-type" ||
         key == "te" || key == "user-agent" || key == "host" || key == "accept-encoding" ||
         key == "connection" || key == rpc::kPrincipalHeader;
}

grpc::ServerGenericBidiReactor* GrpcProxy::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new ProxyCall(context, backends_, default_timeout_);
}

}  // namespace submarine::gateway
