#pragma once
// Kubeflow Trainer v2's TrainJob (trainer.kubeflow.org/v1alpha1), as the Kubernetes backend uses
// it. The API is alpha and changes between minor releases (v2.2 replaced podTemplateOverrides by
// runtimePatches, v2.4 shortened replicatedJob names), so everything that knows its schema is in
// this adapter and nowhere else.
//
// A workload runs as one TrainJob when its roles form one set of identical nodes (Trainer's
// trainer step: numNodes copies of one container): every role has the same command, image,
// environment and resources, and no role asks for per-replica restarts (a JobSet restarts as a
// whole; only Indexed Jobs retry one replica). Anything else runs as Indexed Jobs.
//
// Runtimes, referenced by name (ClusterTrainingRuntime):
//   pytorch    → torch-distributed     (Trainer's own; the command runs under
//                                       `torchrun --no-python`, one process per node, so
//                                       torchrun's RANK/WORLD_SIZE/MASTER_* reach argv)
//   xgboost    → xgboost-distributed   (Trainer's own; it sets DMLC_*)
//   tensorflow → submarine-tensorflow  (ours: deploy/kubernetes/trainer-runtimes.json)
//   plain      → submarine-command     (ours)
// Node r (its pod's completion index) is the r-th replica of RankOrder(spec): a shell prelude
// maps r back to SUBMARINE_TASK_ROLE/INDEX and, for TensorFlow, writes TF_CONFIG on JobSet's
// DNS names <id>-node-0-<r>.<id>.
//
// Status: Trainer only reports Suspended, Complete and Failed; running is read from
// status.jobsStatus[].active and the pods.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/compute/compute.h"

namespace submarine::compute::trainjob {

inline constexpr char kGroupVersion[] = "trainer.kubeflow.org/v1alpha1";
inline constexpr char kPlural[] = "trainjobs";
// The label JobSet puts on every pod of a TrainJob (its value is the TrainJob's name).
inline constexpr char kPodLabel[] = "jobset.sigs.k8s.io/jobset-name";

struct Runtimes {
  std::string plain = "submarine-command";
  std::string tensorflow = "submarine-tensorflow";
  std::string pytorch = "torch-distributed";
  std::string xgboost = "xgboost-distributed";
  const std::string& For(Framework framework) const;
};

// OK when `spec` runs as one TrainJob; otherwise FAILED_PRECONDITION saying why not.
absl::Status Fits(const WorkloadSpec& spec);

// The TrainJob for `spec` (which Fits) in `namespace_`, with `labels` on its metadata.
nlohmann::json Manifest(const WorkloadSpec& spec, const std::string& namespace_,
                        const std::string& image, const Runtimes& runtimes,
                        const std::map<std::string, std::string>& labels,
                        const nlohmann::json& resources, const nlohmann::json& secret_refs);

// The task a pod of the TrainJob runs (from its completion index); nullopt for a pod that is
// not one of the trainer step's.
std::optional<TaskRef> TaskOfPod(const WorkloadSpec& spec, const nlohmann::json& pod);

// What Trainer says of a TrainJob.
struct Observed {
  bool complete = false;
  bool failed = false;
  bool suspended = false;
  int64_t active = 0;   // Jobs running, over every replicatedJob
  std::string message;  // the Failed (or Suspended) condition's reason and message
};
Observed Observe(const nlohmann::json& trainjob);

}  // namespace submarine::compute::trainjob
