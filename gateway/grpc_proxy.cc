#include "gateway/grpc_proxy.h"

#include <google/protobuf/descriptor.h>

#include <atomic>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "gateway/backend_errors.h"
#include "gateway/transcoder.h"
#include "submarine/common/v1/options.pb.h"

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

// What every proxied call checks before anything reaches a backend: the method is known and
// served, not internal_only, and the caller's token is valid. OK fills `backend`, `method` and
// `principal`.
grpc::Status AdmitProxyCall(grpc::GenericCallbackServerContext* context,
                            const BackendPool* backends, const AuthFilter* auth,
                            const Backend** backend,
                            const google::protobuf::MethodDescriptor** method,
                            std::optional<submarine::common::v1::Principal>* principal) {
  const std::string& method_path = context->method();
  *backend = backends->ForMethod(method_path);
  // A method without a descriptor cannot be checked for internal_only or auth_exempt, so it
  // is not forwarded at all.
  *method = *backend == nullptr ? nullptr : FindMethod(method_path);
  if (*method == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat("the gateway serves no method ", QuoteInput(method_path)));
  }
  if (IsInternalOnly(*method)) {
    return ToGrpcStatus(
        MakeError(absl::StatusCode::kPermissionDenied, "INTERNAL_ONLY",
                  absl::StrCat((*method)->full_name(),
                               " is for Submarine services only and is not served by the "
                               "gateway"),
                  {{"method", (*method)->full_name()}}),
        kGatewayDomain);
  }
  std::string authorization;
  auto it = context->client_metadata().find("authorization");
  if (it != context->client_metadata().end()) authorization = ToString(it->second);
  auto verified = auth->Authenticate(*method, authorization);
  if (!verified.ok()) return ToGrpcStatus(verified.status(), kGatewayDomain);
  *principal = std::move(verified).value();
  return grpc::Status::OK;
}

// Copies the client's metadata to the backend call (hop-by-hop keys dropped), sets its deadline
// and attaches the principal. Returns the request id: the client's when acceptable, else the one
// the server interceptor chose; `generated` is set when there was neither (then the caller
// returns it in the initial metadata).
std::string PrepareProxiedCall(grpc::GenericCallbackServerContext* context,
                               const google::protobuf::MethodDescriptor* method,
                               std::chrono::milliseconds unary_default, const AuthFilter* auth,
                               const std::optional<submarine::common::v1::Principal>& principal,
                               grpc::ClientContext* client, bool* generated) {
  std::string request_id;
  for (const auto& [key, value] : context->client_metadata()) {
    std::string k = ToString(key);
    if (IsHopByHopMetadata(k)) continue;
    if (k == rpc::kRequestIdHeader) {
      request_id = ToString(value);  // forwarded below once checked
      continue;
    }
    client->AddMetadata(k, ToString(value));
  }
  *generated = !rpc::AcceptableRequestId(request_id);
  if (*generated) {
    // The gateway's own server interceptor has chosen an id for this call already and returns
    // it in the initial metadata: the backend gets that one, so the client sees one id.
    std::shared_ptr<const rpc::Admission> admission = rpc::AdmissionOf(*context);
    if (admission != nullptr && !admission->call.request_id.empty()) {
      request_id = admission->call.request_id;
      *generated = false;
    } else {
      request_id = IdGenerator::Secure().Uuid();
    }
  }
  auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    if (auto timeout = MethodTimeout(method, unary_default)) {
      deadline = std::chrono::system_clock::now() + *timeout;
    }
  }
  if (deadline != std::chrono::system_clock::time_point::max()) client->set_deadline(deadline);
  auth->Attach(client, principal, request_id, context->method());
  return request_id;
}

// The client's view of a failed backend call: the service's own status unchanged, gRPC's own
// failures (which name internal addresses) logged and replaced.
grpc::Status ProxiedFailure(const grpc::Status& status, const std::string& method_path,
                            const google::protobuf::MethodDescriptor* method,
                            const Backend* backend, const std::string& request_id) {
  if (HidesBackendText(status)) {
    log::ScopedRequestId bind(request_id);
    log::Get("gateway")->warn("{} to {} failed: {}: {}", method_path, backend->address,
                              CodeName(status.error_code()), status.error_message());
  }
  // The client chose the deadline (or got the method's, which it can read from its own clock),
  // so no timeout is quoted.
  return ClientFacingBackendError(method->service()->full_name(), status,
                                  std::chrono::milliseconds(0), request_id);
}

void CopyTrailingMetadata(const grpc::ClientContext& from, grpc::GenericCallbackServerContext* to) {
  for (const auto& [key, value] : from.GetServerTrailingMetadata()) {
    std::string k = ToString(key);
    if (!IsHopByHopMetadata(k)) to->AddTrailingMetadata(k, ToString(value));
  }
}

// One proxied unary call; deletes itself in OnDone.
class ProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* context, const Backend* backend,
            const google::protobuf::MethodDescriptor* method,
            std::optional<submarine::common::v1::Principal> principal, const AuthFilter* auth,
            std::chrono::milliseconds default_timeout)
      : context_(context),
        auth_(auth),
        default_timeout_(default_timeout),
        principal_(std::move(principal)),
        backend_(backend),
        method_(method) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request"));
      return;
    }
    bool generated = false;
    request_id_ = PrepareProxiedCall(context_, method_, default_timeout_, auth_, principal_,
                                     &client_, &generated);
    // A client-sent id is echoed by the server's interceptor; a generated one is added here.
    if (generated) context_->AddInitialMetadata(rpc::kRequestIdHeader, request_id_);
    log::ScopedRequestId bind(request_id_);
    log::Get("gateway")->debug("proxying {} to {}", context_->method(), backend_->address);
    backend_->stub->UnaryCall(&client_, context_->method(), grpc::StubOptions(), &request_,
                              &response_, [this](grpc::Status status) { OnBackendDone(status); });
  }

  void OnCancel() override { client_.TryCancel(); }

  void OnDone() override { delete this; }

 private:
  void OnBackendDone(const grpc::Status& status) {
    CopyTrailingMetadata(client_, context_);
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
      return;
    }
    Finish(ProxiedFailure(status, context_->method(), method_, backend_, request_id_));
  }

  grpc::GenericCallbackServerContext* context_;
  const AuthFilter* auth_;
  std::chrono::milliseconds default_timeout_;
  std::optional<submarine::common::v1::Principal> principal_;
  const Backend* backend_;
  const google::protobuf::MethodDescriptor* method_;
  std::string request_id_;
  grpc::ClientContext client_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

// One proxied client-, server- or bidi-streaming call: the client's side is this server
// reactor, the backend's a client bidi reactor (BackendLeg). Messages flow one at a time in each
// direction: upstream, a client message is read, written to the backend, and only then is the
// next one read; downstream the same from the backend to the client. The backend leg's
// operations are started from the server side's reactions, so the leg carries two holds, one
// per direction, released when that direction is over; its OnDone (the backend's status) then
// finishes the client's call. Deletes itself once both sides are done.
class StreamingProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  StreamingProxyCall(grpc::GenericCallbackServerContext* context, const Backend* backend,
                     const google::protobuf::MethodDescriptor* method,
                     std::optional<submarine::common::v1::Principal> principal,
                     const AuthFilter* auth, std::chrono::milliseconds default_timeout)
      : context_(context), backend_(backend), method_(method), leg_(this) {
    bool generated = false;
    request_id_ =
        PrepareProxiedCall(context, method, default_timeout, auth, principal, &client_, &generated);
    if (generated) context_->AddInitialMetadata(rpc::kRequestIdHeader, request_id_);
    {
      log::ScopedRequestId bind(request_id_);
      log::Get("gateway")->debug("proxying stream {} to {}", context_->method(), backend_->address);
    }
    // The client learns the call is open (and its request id) before any message flows: a
    // server stream may stay silent for long.
    StartSendInitialMetadata();
    backend_->stub->PrepareBidiStreamingCall(&client_, context_->method(), grpc::StubOptions(),
                                             &leg_);
    leg_.AddMultipleHolds(2);  // upstream, downstream
    leg_.StartRead(&downstream_);
    leg_.StartCall();
    StartRead(&upstream_);
  }

  // A client message (forwarded to the backend), or the client's half-close.
  void OnReadDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (backend_closed_) return;  // the backend has ended the call: nowhere to send it
    if (ok) {
      backend_write_pending_ = true;
      leg_.StartWrite(&upstream_);
    } else {
      writes_done_pending_ = true;
      leg_.StartWritesDone();
    }
  }

  // A backend message reached the client: the next one may be read.
  void OnWriteDone(bool ok) override {
    if (ok) {
      leg_.StartRead(&downstream_);
      return;
    }
    // The client is gone: the backend call ends (cancelled) and no further read is started.
    client_.TryCancel();
    leg_.RemoveHold();  // downstream
  }

  void OnSendInitialMetadataDone(bool) override {}

  void OnCancel() override { client_.TryCancel(); }

  void OnDone() override { Release(); }

 private:
  class BackendLeg : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit BackendLeg(StreamingProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override { call_->OnBackendMessage(ok); }
    void OnWriteDone(bool ok) override { call_->OnBackendWriteDone(ok); }
    void OnWritesDoneDone(bool) override { call_->OnBackendWritesDoneDone(); }
    void OnDone(const grpc::Status& status) override { call_->OnBackendDone(status); }

   private:
    StreamingProxyCall* call_;
  };

  void OnBackendMessage(bool ok) {
    if (ok) {
      StartWrite(&downstream_);
      return;
    }
    // The backend has sent its last message; its status follows in OnBackendDone once the
    // upstream hold is released too. A client message being written completes first; a client
    // read in flight is abandoned.
    bool release_upstream = false;
    {
      std::lock_guard lock(mu_);
      backend_closed_ = true;
      release_upstream = TakeUpstreamHold();
    }
    if (release_upstream) leg_.RemoveHold();
    leg_.RemoveHold();  // downstream
  }

  void OnBackendWriteDone(bool ok) {
    bool release_upstream = false;
    {
      std::lock_guard lock(mu_);
      backend_write_pending_ = false;
      if (ok && !backend_closed_) {
        StartRead(&upstream_);
        return;
      }
      // A failed write means the call is over; its status comes in OnBackendDone.
      backend_closed_ = true;
      release_upstream = TakeUpstreamHold();
    }
    if (release_upstream) leg_.RemoveHold();
  }

  void OnBackendWritesDoneDone() {
    bool release_upstream = false;
    {
      std::lock_guard lock(mu_);
      writes_done_pending_ = false;
      release_upstream = TakeUpstreamHold();
    }
    if (release_upstream) leg_.RemoveHold();
  }

  // Under mu_: true (once) when the upstream hold may go: no backend write or WritesDone is in
  // flight. The caller removes it outside mu_ (removing the last hold may run OnDone at once).
  bool TakeUpstreamHold() {
    if (!upstream_held_ || backend_write_pending_ || writes_done_pending_) return false;
    upstream_held_ = false;
    return true;
  }

  void OnBackendDone(const grpc::Status& status) {
    CopyTrailingMetadata(client_, context_);
    Finish(status.ok()
               ? status
               : ProxiedFailure(status, context_->method(), method_, backend_, request_id_));
    Release();
  }

  void Release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  grpc::GenericCallbackServerContext* context_;
  const Backend* backend_;
  const google::protobuf::MethodDescriptor* method_;
  std::string request_id_;
  grpc::ClientContext client_;
  BackendLeg leg_;
  grpc::ByteBuffer upstream_;    // client -> backend, one message at a time
  grpc::ByteBuffer downstream_;  // backend -> client, one message at a time
  std::mutex mu_;
  bool backend_closed_ = false;         // GUARDED_BY(mu_)
  bool backend_write_pending_ = false;  // GUARDED_BY(mu_)
  bool writes_done_pending_ = false;    // GUARDED_BY(mu_)
  bool upstream_held_ = true;           // GUARDED_BY(mu_)
  std::atomic<int> refs_{2};            // the client's side and the backend leg
};

// A call refused before any backend is involved.
class RefusedProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit RefusedProxyCall(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

bool IsHopByHopMetadata(std::string_view key) {
  return key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "content-type" ||
         key == "te" || key == "user-agent" || key == "host" || key == "accept-encoding" ||
         key == "connection" || key == "authorization" || key == rpc::kPrincipalHeader ||
         key == rpc::kPrincipalMacHeader;
}

std::optional<std::chrono::milliseconds> MethodTimeout(
    const google::protobuf::MethodDescriptor* method, std::chrono::milliseconds unary_default) {
  uint32_t ms = method->options().GetExtension(submarine::common::v1::timeout_ms);
  if (ms > 0) return std::chrono::milliseconds(ms);
  if (method->client_streaming() || method->server_streaming()) return std::nullopt;
  return unary_default;
}

grpc::ServerGenericBidiReactor* GrpcProxy::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  const Backend* backend = nullptr;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::optional<submarine::common::v1::Principal> principal;
  grpc::Status admitted = AdmitProxyCall(context, backends_, auth_, &backend, &method, &principal);
  if (!admitted.ok()) return new RefusedProxyCall(admitted);
  if (method->client_streaming() || method->server_streaming()) {
    return new StreamingProxyCall(context, backend, method, std::move(principal), auth_,
                                  default_timeout_);
  }
  return new ProxyCall(context, backend, method, std::move(principal), auth_, default_timeout_);
}

}  // namespace submarine::gateway
