#pragma once
// How one Submarine process serves and dials the others.
//
// ServerCredentials() turns ServerConfig.tls into the credentials a gRPC server listens with:
// plaintext when absent, TLS with cert_file + key_file, mutual TLS (clients must present a
// certificate from ca_file) when ca_file is set too.
//
// MakeChannel() dials another process with the process-wide peer settings (ServerConfig.peer_tls,
// installed once with SetPeerTls) and an interceptor that signs, for exactly the method being
// called, the principal the call acts as: a caller states it with ActAs() on the call's context,
// and at send time the interceptor replaces that statement with x-submarine-principal + its MAC
// (common/auth/principal.h, under the codec installed with rpc::SetPrincipalCodec), valid until
// the call's deadline. The statement itself never leaves the process. So no caller spells out a
// method name or handles the secret.
//
// Thread-safe; SetPeerTls is meant for start-up.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "submarine/common/v1/principal.pb.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::rpc {

// INVALID_ARGUMENT naming the field when a file is unreadable, or only one of cert/key is set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const submarine::config::v1::TlsConfig& tls, const std::string& field = "server.tls");

// Installs how MakeChannel dials (an empty config: plaintext). Same errors as ServerCredentials.
absl::Status SetPeerTls(const submarine::config::v1::TlsConfig& tls,
                        const std::string& field = "server.peer_tls");

// A channel to another Submarine process at `address` ("host:port").
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           grpc::ChannelArguments args = grpc::ChannelArguments());

// The call made with `ctx` over a MakeChannel channel acts as `principal`, for request
// `request_id` (also sent as x-request-id; a fresh id when empty). Set the deadline first.
void ActAs(grpc::ClientContext* ctx, const submarine::common::v1::Principal& principal,
           const std::string& request_id = "");

}  // namespace submarine::rpc
