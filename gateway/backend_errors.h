#pragma once
// What a client may learn when a backend call fails, on the REST side and in the gRPC proxy
// alike. A service's own error carries a google.rpc.Status with an ErrorInfo in
// grpc-status-details-bin (its edge has already bounded it) and is passed on unchanged — unless
// it is a server fault (INTERNAL, UNKNOWN, DATA_LOSS): its text may be a database's or an
// exception's, so the client gets a fixed message naming the request id instead. A status with
// one of the codes gRPC raises itself and no details is gRPC's (connection refused, deadline,
// size and metadata limits): its text names internal addresses and library internals, so the
// client gets a generic gateway error naming only the service. In both cases the caller logs the
// original with the request id (HidesBackendText). Stateless; thread-safe.

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>

namespace submarine::gateway {

// Whether `status` was raised by gRPC rather than by the service: a code gRPC raises (CANCELLED,
// UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, RESOURCE_EXHAUSTED,
// UNAUTHENTICATED) without details.
bool IsTransportError(const grpc::Status& status);

// Whether the client does not get `status`'s own text: a transport error, or a server fault
// (INTERNAL, UNKNOWN, DATA_LOSS) of the service. The caller logs the text.
bool HidesBackendText(const grpc::Status& status);

// The client-facing form of `status`, the failure of a call to `service` (a full service name)
// made for request `request_id`, whose deadline was `timeout` after it started (zero: a deadline
// the client chose). A transport error becomes, with an ErrorInfo of domain kGatewayDomain and
// metadata {service}:
//   UNAVAILABLE        -> UNAVAILABLE, reason BACKEND_UNAVAILABLE
//   DEADLINE_EXCEEDED  -> DEADLINE_EXCEEDED, reason BACKEND_DEADLINE_EXCEEDED (+ timeoutMs)
//   RESOURCE_EXHAUSTED -> INTERNAL, reason BACKEND_ERROR (gRPC's own size limits were hit: not
//                         the caller's quota, and a retry would fail the same way)
//   any other code     -> that code, reason BACKEND_ERROR
// A server fault of the service keeps its code, and its ErrorInfo reason and domain when they
// are well-formed constants (else INTERNAL_ERROR and kGatewayDomain); its message becomes
// "internal error in <service>; see its log for request <request_id>" and its metadata
// {service, requestId}. Any other status is returned unchanged.
grpc::Status ClientFacingBackendError(const std::string& service, const grpc::Status& status,
                                      std::chrono::milliseconds timeout,
                                      const std::string& request_id);

}  // namespace submarine::gateway
