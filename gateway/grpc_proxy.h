#pragma once
// Native gRPC for gRPC clients: a CallbackGenericService that forwards each unary call
// byte-for-byte to the backend serving the called service. Client metadata is forwarded (except
// transport headers and x-submarine-principal, which only the gateway may set); x-request-id is
// generated when absent and returned in the initial metadata; the client's deadline is
// propagated (request_timeout when it has none); the backend's status, message and details come
// back unchanged. An unknown service gets UNIMPLEMENTED. Thread-safe.

#include <grpcpp/generic/async_generic_service.h>

#include <chrono>

#include "gateway/backend_pool.h"

namespace submarine::gateway {

class GrpcProxy : public grpc::CallbackGenericService {
 public:
  // `backends` is not owned and must outlive the proxy and its gRPC server.
  GrpcProxy(const BackendPool* backends, std::chrono::milliseconds default_timeout)
      : backends_(backends), default_timeout_(default_timeout) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const BackendPool* backends_;
  std::chrono::milliseconds default_timeout_;
};

// True for metadata keys a proxy must not copy from one call to another (pseudo and transport
// headers, grpc-* reserved keys, and the gateway-only principal).
bool IsHopByHopMetadata(std::string_view key);

}  // namespace submarine::gateway
