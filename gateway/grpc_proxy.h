#pragma once
// Native gRPC for gRPC clients: a CallbackGenericService that forwards each unary call
// byte-for-byte to the backend serving the called service. Only methods the gateway knows (their
// descriptors are linked in) are forwarded; a method marked (submarine.common.v1.internal_only)
// is refused with PERMISSION_DENIED (reason INTERNAL_ONLY), and every method not marked
// auth_exempt needs "authorization: Bearer <jwt>" metadata (UNAUTHENTICATED otherwise, see
// AuthFilter). Client metadata is forwarded except transport headers, the client's
// authorization and any x-submarine-principal(-mac): only the gateway sets the principal, after
// verifying the token. x-request-id is generated when absent and returned in the initial
// metadata; the client's deadline is propagated (request_timeout when it has none); the
// service's status, message and details come back unchanged, while a failure raised by gRPC
// itself (no details: it names internal addresses) is logged and answered as
// ClientFacingBackendError() says. An unknown service or method gets UNIMPLEMENTED. Thread-safe.

#include <grpcpp/generic/async_generic_service.h>

#include <chrono>

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

// True for metadata keys a proxy must not copy from one call to another (pseudo and transport
// headers, grpc-* reserved keys, the client's credentials and the gateway-only principal).
bool IsHopByHopMetadata(std::string_view key);

}  // namespace submarine::gateway
