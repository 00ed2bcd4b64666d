#pragma once
// core/v1 Events as client-go's EventRecorder writes them for the kubelet and the controllers:
// name `<object>.<unix nanoseconds in hex>`, involvedObject (kind, namespace, name, uid,
// apiVersion, resourceVersion, fieldPath), source {component, host}, reportingComponent and
// reportingInstance, first/lastTimestamp, count. As its EventCorrelator does, an event identical
// to one recorded before (same source, involved object, type, reason and message) is not created
// again: the existing object gets count + 1 and a new lastTimestamp.
//
// Thread-safe; writes go straight to the store (whose listeners only queue), so it may be called
// from any controller thread, never under the store's lock.

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tests/support/fake_kube/object_store.h"

namespace submarine::testing::fake_kube {

class EventRecorder {
 public:
  explicit EventRecorder(ObjectStore& store);

  struct Source {
    std::string component;  // "kubelet", "statefulset-controller"
    std::string host;       // the node for the kubelet, empty for controllers
  };
  // Records an event of `type` ("Normal", "Warning") about `object` (a stored object: its
  // apiVersion, kind and metadata are referenced), `field_path` ("spec.containers{main}") may
  // be empty.
  void Record(const Source& source, const nlohmann::json& object, const std::string& field_path,
              const std::string& type, const std::string& reason, const std::string& message);

 private:
  ObjectStore& store_;
  const ResourceType& events_;
  absl::Mutex mu_;
  // Correlation key → the event object's "namespace/name" (bounded, as client-go's LRU).
  std::map<std::string, std::pair<std::string, std::string>> recorded_ ABSL_GUARDED_BY(mu_);
};

}  // namespace submarine::testing::fake_kube
