#pragma once
// The compute clusters one service runs workloads on, by name: "local" (the embedded default),
// those its configuration names, and those built at run time from computeClusters/* records
// (services/experiment/cluster_directory.h). The owner of the backends keeps them alive for the
// whole life of the registry: a backend once added is never destroyed before it, so a pointer
// from Find stays valid (a deleted cluster's backend still observes the workloads left on it).
// Thread-safe.

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/compute/compute.h"

namespace submarine::compute {

class Clusters {
 public:
  // Adds or replaces the backend of `name`.
  void Add(const std::string& name, Backend* backend) {
    absl::MutexLock lock(&mu_);
    backends_[name] = backend;
  }
  // nullptr when no cluster has this name.
  Backend* Find(const std::string& name) const {
    absl::MutexLock lock(&mu_);
    auto it = backends_.find(name);
    return it == backends_.end() ? nullptr : it->second;
  }
  std::vector<std::string> Names() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [name, backend] : backends_) names.push_back(name);
    return names;
  }
  // A copy of the registry as it is now.
  std::map<std::string, Backend*> all() const {
    absl::MutexLock lock(&mu_);
    return backends_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Backend*> backends_ ABSL_GUARDED_BY(mu_);
};

}  // namespace submarine::compute
