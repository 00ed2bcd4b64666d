#pragma once
// How every gRPC method of the experiment service runs its body: rpc::HandleCall under the
// service's error domain (both faces, the native API and Apache Submarine's, share it).

#include <grpcpp/grpcpp.h>

#include <utility>

#include "common/rpc/call_context.h"
#include "services/experiment/experiment_manager.h"

namespace submarine::experiment {

template <class F>
grpc::Status Handle(grpc::ServerContext* ctx, F&& body) {
  return rpc::HandleCall(*ctx, kErrorDomain, std::forward<F>(body));
}

}  // namespace submarine::experiment
