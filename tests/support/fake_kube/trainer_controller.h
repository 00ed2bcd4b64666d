#pragma once
// A simulated Kubeflow Trainer v2 TrainJob controller that also stands in for JobSet (no JobSet
// object is served). For a TrainJob (managedBy unset or Trainer's) whose runtime — a
// ClusterTrainingRuntime, or a TrainingRuntime of its namespace — exists:
//   - a headless Service `<trainjob>` and, per replicatedJob of the runtime's JobSet template
//     (in order, honouring dependsOn Ready/Complete), `replicas` Indexed Jobs named
//     `<trainjob>-<replicatedJob>-<i>`, owned by the TrainJob, labelled (and their pods)
//     jobset.sigs.k8s.io/jobset-name, replicatedjob-name, replicatedjob-replicas, job-index,
//     with subdomain `<trainjob>` and suspend mirroring the TrainJob's;
//   - the trainer step (the replicatedJob labelled trainer.kubeflow.org/trainjob-ancestor-step
//     = trainer, else the one named `node`) takes numNodes (TrainJob, else runtime mlPolicy, else
//     1) as completions and parallelism, and the TrainJob's image, command, args, env and
//     resourcesPerNode on its container named `node`; with an mlPolicy.torch the PET_NNODES,
//     PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT variables;
//   - status.jobsStatus[] {name, ready, succeeded, failed, active, suspended} counting Jobs per
//     replicatedJob, as JobSet does; conditions Suspended (Suspended/Resumed), Complete
//     (AllJobsCompleted) and Failed (FailedJobs, remaining Jobs deleted; DeadlineExceeded for
//     activeDeadlineSeconds). No Running condition exists.
// A runtime deleted after the TrainJob was admitted gives a Warning Event
// TrainJobResourcesCreationFailed, as Trainer does. (Creating a TrainJob whose runtime does not
// exist is refused by the admission webhook, see admission.cc.)

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/work_queue.h"

namespace submarine::testing::fake_kube {

class TrainerController {
 public:
  explicit TrainerController(ObjectStore& store);
  ~TrainerController();
  TrainerController(const TrainerController&) = delete;
  TrainerController& operator=(const TrainerController&) = delete;

  void Start();
  void Stop();

 private:
  void Run();
  void Sync(const std::string& namespace_, const std::string& name);
  void RecordEvent(const nlohmann::json& trainjob, const std::string& type,
                   const std::string& reason, const std::string& message);

  ObjectStore& store_;
  const ResourceType& trainjobs_;
  const ResourceType& jobs_;
  const ResourceType& services_;
  const ResourceType& events_;
  std::shared_ptr<WorkQueue> queue_ = std::make_shared<WorkQueue>();
  std::thread thread_;
  std::set<std::string> warned_;  // TrainJob uids given the missing-runtime event
};

}  // namespace submarine::testing::fake_kube
