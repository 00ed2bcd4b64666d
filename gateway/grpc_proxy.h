#pragma once
// Native gRPC for gRPC clients: a CallbackGenericService that forwards each call byte-for-byte
// to the backend serving the called service. Unary calls are forwarded whole; client-, server-
// and bidi-streaming calls message by message with flow control: the next message is read from
// one side only once the previous one was written to the other, so no stream is ever buffered
// beyond one message per direction. A client's half-close is forwarded as the backend's
// WritesDone, a client cancellation cancels the backend call, and a backend that ends the call
// ends the client's with its status (its later messages from the client are dropped). Only methods
// the gateway knows (their descriptors are linked in) are forwarded; a method marked
// (submarine.common.v1.internal_only) is refused with PERMISSION_DENIED (reason INTERNAL_ONLY), and
// every method not marked auth_exempt needs "authorization: Bearer <jwt>" metadata (UNAUTHENTICATED
// otherwise, see AuthFilter). Client metadata is forwarded except transport headers, the client's
// authorization and any x-submarine-principal(-mac): only the gateway sets the principal, after
// verifying the token. x-request-id is generated when absent and returned in the initial
// metadata (for streaming calls, at once: before the first message); the client's deadline is
// propagated, else the method's (submarine.common.v1.timeout_ms), else request_timeout for unary
// methods and none for streaming ones (see MethodTimeout); only trailing metadata comes back; the
// service's status, message and details come back unchanged, while a failure raised by gRPC
// itself (no details: it names internal addresses) is logged and answered as
// ClientFacingBackendError() says. An unknown service or method gets UNIMPLEMENTED. Thread-safe.

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/async_generic_service.h>

#include <chrono>
#include <optional>

#include "gateway/auth_filter.h"
#include "gateway/backend_pool.h"

namespace submarine::gateway {

class GrpcProxy : public grpc::CallbackGenericService {
 public:
  // `backends` and `auth` are not owned and must outlive the proxy and its gRPC server.
  GrpcProxy(const BackendPool* backends, const AuthFilter* auth,
            std::chrono::milliseconds default_timeout)
      : backends_(backends), auth_(auth), default_timeout_(default_timeout) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const BackendPool* backends_;
  const AuthFilter* auth_;
  std::chrono::milliseconds default_timeout_;
};

// The deadline a call of `method` gets when its client sets none: the method's
// (submarine.common.v1.timeout_ms) option when set, else `unary_default` for unary methods and
// nullopt (no deadline) for streaming ones.
std::optional<std::chrono::milliseconds> MethodTimeout(
    const google::protobuf::MethodDescriptor* method, std::chrono::milliseconds unary_default);

// True for metadata keys a proxy must not copy from one call to another (pseudo and transport
// headers, grpc-* reserved keys, the client's credentials and the gateway-only principal).
bool IsHopByHopMetadata(std::string_view key);

}  // namespace submarine::gateway
