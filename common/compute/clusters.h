#pragma once
// The compute clusters one service runs workloads on, by name: "local" (the embedded default)
// and any others its configuration names ("kubernetes", ...). The owner of the backends keeps
// them alive; the registry only points at them. Filled at start-up, read-only afterwards, so
// reads need no lock.

#include <map>
#include <string>
#include <vector>

#include "common/compute/compute.h"

namespace submarine::compute {

class Clusters {
 public:
  void Add(const std::string& name, Backend* backend) { backends_[name] = backend; }
  // nullptr when no cluster has this name.
  Backend* Find(const std::string& name) const {
    auto it = backends_.find(name);
    return it == backends_.end() ? nullptr : it->second;
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, backend] : backends_) names.push_back(name);
    return names;
  }
  const std::map<std::string, Backend*>& all() const { return backends_; }

 private:
  std::map<std::string, Backend*> backends_;
};

}  // namespace submarine::compute
