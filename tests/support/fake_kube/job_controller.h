#pragma once
// A simulated batch/v1 Job controller (kube-controller-manager's, v1.32 behaviour, without its
// back-off delays): creates a Job's pods (Indexed: `<job>-<index>-<random>` with the completion
// index label, annotation, JOB_COMPLETION_INDEX env and, with a subdomain, the hostname
// `<job>-<index>`; NonIndexed: `<job>-<random>`), owned by the Job, with the
// batch.kubernetes.io/job-tracking finalizer it removes once it has counted the pod (a deleted
// pod that has not succeeded counts as failed at once, unless podReplacementPolicy is Failed).
// Replaces failed pods until failed pods exceed backoffLimit, or container restarts under
// OnFailure reach it → FailureTarget then Failed (BackoffLimitExceeded), remaining pods
// deleted; with backoffLimitPerIndex an index fails for good after that many retries (pods carry
// the job-index-failure-count annotation; status.failedIndexes) → FailedIndexes once every index
// is done, MaxFailedIndexesExceeded past maxFailedIndexes; every index succeeded →
// SuccessCriteriaMet then Complete (CompletionsReached); activeDeadlineSeconds →
// DeadlineExceeded; suspend → pods deleted, Suspended (JobSuspended / JobResumed). Keeps
// status.active, ready, succeeded, failed, terminating, startTime, completionTime,
// completedIndexes (active, succeeded and failed omitted when 0, as their omitempty fields are).
//
// One worker thread, fed by store events; never runs on a request thread.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/work_queue.h"

namespace submarine::testing::fake_kube {

class JobController {
 public:
  // `kubelet_runs_pods`: a kubelet terminates deleted pods that are bound to its node (so such
  // a pod is counted once it reaches a final phase); without one they are counted at once.
  JobController(ObjectStore& store, bool kubelet_runs_pods);
  ~JobController();
  JobController(const JobController&) = delete;
  JobController& operator=(const JobController&) = delete;

  void Start();
  void Stop();

  static constexpr char kTrackingFinalizer[] = "batch.kubernetes.io/job-tracking";

 private:
  // What the controller has counted of a Job's finished pods (kept in memory, as the real
  // controller keeps uncountedTerminatedPods in the Job's status between its two steps).
  struct Tracking {
    std::set<std::string> counted;  // pod uids
    int64_t succeeded = 0;
    int64_t failed = 0;
    std::set<int64_t> succeeded_indexes;
    std::map<int64_t, int64_t> failures_by_index;  // failed pods per completion index
  };

  void Run();
  void SyncJob(const std::string& namespace_, const std::string& name);
  void SyncOrphanPod(const std::string& namespace_, const std::string& name);
  void RemoveFinalizer(const nlohmann::json& pod);

  ObjectStore& store_;
  const ResourceType& jobs_;
  const ResourceType& pods_;
  const bool kubelet_runs_pods_;
  std::shared_ptr<WorkQueue> queue_ = std::make_shared<WorkQueue>();
  std::thread thread_;
  // The worker thread's only: tracking by Job uid, and the uid of each Job key it has seen.
  std::map<std::string, Tracking> tracking_;
  std::map<std::string, std::string> uid_by_key_;
};

}  // namespace submarine::testing::fake_kube
