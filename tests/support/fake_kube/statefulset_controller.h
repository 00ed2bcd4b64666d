#pragma once
// A simulated apps/v1 StatefulSet controller (kube-controller-manager's, v1.32 behaviour): pods
// `<set>-<ordinal>` for ordinals [ordinals.start, ordinals.start + replicas) from the template,
// with the `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
// `controller-revision-hash` labels, hostname = pod name, subdomain = serviceName and a
// controller ownerReference (so deletion propagates through the garbage collector).
//   - Parallel: every missing pod is created and every pod past the replicas deleted at once.
//   - OrderedReady: ordinal i is created only once 0..i-1 are Running and Ready; scaling down
//     deletes the highest ordinal first, one at a time, each gone before the next.
//   - A pod that ended (Failed or Succeeded) is deleted; a pod that is gone is created again
//     (same name, new uid) once its old object has left the store.
//   - RollingUpdate: after a template change, pods of the old revision are deleted from the
//     highest ordinal down to the partition, one at a time, each replacement Running and Ready
//     before the next; OnDelete leaves them.
// Deletions use the pod's own terminationGracePeriodSeconds. Events SuccessfulCreate /
// SuccessfulDelete as the real controller records them. Status: observedGeneration, replicas
// (pods that exist), readyReplicas, currentReplicas, updatedReplicas (omitted when 0),
// availableReplicas (ready for minReadySeconds; always written), currentRevision,
// updateRevision, collisionCount.
//
// One worker thread, fed by store events; never runs on a request thread.

#include <memory>
#include <string>
#include <thread>

#include "tests/support/fake_kube/event_recorder.h"
#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/work_queue.h"

namespace submarine::testing::fake_kube {

class StatefulSetController {
 public:
  StatefulSetController(ObjectStore& store, EventRecorder& events);
  ~StatefulSetController();
  StatefulSetController(const StatefulSetController&) = delete;
  StatefulSetController& operator=(const StatefulSetController&) = delete;

  void Start();
  void Stop();

  static constexpr char kPodNameLabel[] = "statefulset.kubernetes.io/pod-name";
  static constexpr char kPodIndexLabel[] = "apps.kubernetes.io/pod-index";
  static constexpr char kRevisionLabel[] = "controller-revision-hash";

 private:
  void Run();
  void Sync(const std::string& namespace_, const std::string& name);

  ObjectStore& store_;
  EventRecorder& events_;
  const ResourceType& sets_;
  const ResourceType& pods_;
  std::shared_ptr<WorkQueue> queue_ = std::make_shared<WorkQueue>();
  std::thread thread_;
};

}  // namespace submarine::testing::fake_kube
