#pragma once
// What an experiment's spec means: validation (every error is INVALID_ARGUMENT naming its field,
// e.g. "experiment.spec.spec.Worker.resources") and resolution into the canonical spec stored in
// the reproducibility record and the compute::WorkloadSpec a backend runs.
//
// Rules (Apache Submarine's ExperimentSpec vocabulary, with its traps removed):
//   - framework: tensorflow | pytorch | xgboost | plain, case-insensitive, default plain;
//   - roles, case-insensitive: tensorflow Ps, Worker, Chief, Master, Evaluator; pytorch and
//     xgboost Master, Worker; plain exactly one role of any name ([a-z][a-z0-9-]{0,30});
//     stored lower-case;
//   - replicas 1..1000 (0 = 1); resources are Kubernetes quantities (compute/quantity.h);
//   - command: the role's args or cmd, else meta's args or cmd; args and cmd exclusive at each
//     level; a cmd is a shell string run by /bin/sh -c, never split;
//   - env: the role's env_vars merged over meta's; names match [A-Za-z_][A-Za-z0-9_]*, and the
//     platform's own prefix SUBMARINE_ is reserved;
//   - priority -1000..1000; max_run_time >= 0; retries 0..100;
//   - code.git: the repository (https, http, ssh, git, file or user@host:path; a branch or tag,
//     default "main") is cloned into each task's fresh working directory before its command runs,
//     and the commit is written to the task's log; `credential` names one of the submitter's
//     credentials (an id or users/{u}/credentials/{id});
//   - environment.pip_dependencies / conda_dependencies: at most 256 one-line specs, none an
//     option (starting with '-'); a profile's are put first when the experiment is submitted.

#include <string>

#include "absl/status/statusor.h"
#include "common/compute/compute.h"
#include "submarine/experiment/v1/experiment.pb.h"

namespace submarine::experiment {

// Validates `spec` (fields are named under `prefix`, e.g. "experiment.spec.") and returns its
// canonical form: framework and roles lower-case, replicas and commands filled in per role
// (args, or {"/bin/sh", "-c", cmd}), env merged per role, compute_cluster "local" by default
// and one of `clusters` (the names this installation runs on).
absl::StatusOr<v1::ExperimentSpec> ResolveSpec(const v1::ExperimentSpec& spec,
                                               const std::string& prefix,
                                               const std::vector<std::string>& clusters);

// pip requirement specs (a profile's or a spec's `pip_dependencies`, or conda's): each at most
// 256 bytes, one line, not starting with '-' (no pip options); at most 256 of them.
// INVALID_ARGUMENT naming `field`[i] otherwise.
absl::Status CheckDependencies(const google::protobuf::RepeatedPtrField<std::string>& deps,
                               const std::string& field);

// How the local backend realises pip dependencies: each task builds (once per distinct list,
// under a lock, shared by every task after it) a virtualenv with the system site packages and
// runs its command inside it.
struct PythonEnvs {
  std::string dir;         // where the virtualenvs live; "" = pip dependencies not installed
  std::string index_url;   // pip --index-url; "" = pip's own default
  std::string find_links;  // pip --find-links (and --no-index when index_url is "")
};

// The virtualenv directory of a dependency list: dir/<hash of the list and the pip sources>.
std::string PythonEnvPath(const PythonEnvs& envs,
                          const google::protobuf::RepeatedPtrField<std::string>& deps);

// The workload of a resolved spec. `env` holds the platform's variables (set last). With
// `python_envs` (the local backend's), a spec with pip dependencies runs in their virtualenv.
compute::WorkloadSpec ToWorkload(const v1::ExperimentSpec& resolved, const std::string& id,
                                 const std::map<std::string, std::string>& env,
                                 const std::map<std::string, std::string>& labels,
                                 const PythonEnvs* python_envs = nullptr);

// What a resolved spec asks of `backend_kind` that it cannot do, said to the user: an image or
// conda dependencies on the local backend, pip dependencies without `python_envs` there.
std::vector<std::string> LaunchWarnings(const v1::ExperimentSpec& resolved,
                                        const std::string& backend_kind,
                                        const PythonEnvs* python_envs);

// The compute cluster an experiment runs on (its resolved spec's).
inline const std::string& ClusterOf(const v1::Experiment& e) {
  return e.reproducibility().resolved_spec().compute_cluster();
}

// The compute cluster id a spec names ("local" for "", "local", "computeClusters/local").
std::string ClusterId(const std::string& compute_cluster);

// What every replica of a resolved spec asks for, added up.
compute::Resources TotalResources(const v1::ExperimentSpec& resolved);

}  // namespace submarine::experiment
