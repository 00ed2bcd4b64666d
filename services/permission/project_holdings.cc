#include "services/permission/project_holdings.h"

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"

namespace submarine::permission {

PeerProjectHoldings::PeerProjectHoldings(
    const std::vector<submarine::config::v1::PeerService>& peers) {
  for (const auto& peer : peers) {
    peers_.push_back({peer.name(), submarine::common::v1::ProjectResources::NewStub(
                                       rpc::MakeChannel(peer.address()))});
  }
}

absl::StatusOr<std::map<std::string, int64_t>> PeerProjectHoldings::Count(
    const std::string& project, std::chrono::system_clock::time_point deadline) const {
  std::map<std::string, int64_t> total;
  for (const Peer& peer : peers_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    rpc::ActAs(&ctx, auth::ServicePrincipal("permission"));
    submarine::common::v1::CountProjectResourcesRequest req;
    req.set_project(project);
    submarine::common::v1::CountProjectResourcesResponse resp;
    grpc::Status st = peer.stub->CountProjectResources(&ctx, req, &resp);
    if (!st.ok()) {
      return MakeError(absl::StatusCode::kUnavailable, "PEER_UNAVAILABLE",
                       absl::StrCat("cannot tell whether \"", project, "\" still holds anything: the ",
                                    peer.name, " service did not answer (",
                                    QuoteInput(st.error_message()), "); try again"),
                       {{"service", peer.name}});
    }
    for (const auto& [collection, count] : resp.counts()) total[collection] += count;
  }
  return total;
}

}  // namespace submarine::permission
