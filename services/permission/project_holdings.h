#pragma once
// What the other services still hold in a project, asked before the project is deleted: every
// peer of common.peers answers ProjectResources.CountProjectResources (served by its service
// host). The permission service refuses to delete a project while anything remains, so a later
// project of the same name never inherits another's resources.
//
// Fails closed: a peer that cannot answer (down, timing out, refusing) makes the whole check
// UNAVAILABLE, reason PEER_UNAVAILABLE, naming the peer — the project is not deleted on a guess.
// Calls carry Principal{SERVICE, "permission"} signed with the process' codec. Thread-safe.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "submarine/common/v1/project_resources.grpc.pb.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::permission {

class PeerProjectHoldings {
 public:
  explicit PeerProjectHoldings(const std::vector<submarine::config::v1::PeerService>& peers);

  // Collection → count over every peer, e.g. {"environments": 3}; empty when nothing remains.
  // `project` is "projects/{p}".
  absl::StatusOr<std::map<std::string, int64_t>> Count(
      const std::string& project, std::chrono::system_clock::time_point deadline) const;

 private:
  struct Peer {
    std::string name;
    std::unique_ptr<submarine::common::v1::ProjectResources::Stub> stub;
  };
  std::vector<Peer> peers_;
};

}  // namespace submarine::permission
