#pragma once
// ExperimentManager decides everything a request can do to experiments: authorization (through
// the permission service, before the store is touched: a caller without access gets
// PERMISSION_DENIED whether or not the experiment exists), validation (experiment_spec.h; every
// error names its field and nothing is stored), names, owners, FieldMask updates, keyset
// pagination, filters, AIP-155 request ids and the events each change publishes (in the same
// transaction). States are the controller's, except: Create stores PENDING, Stop of an
// experiment that has not reached its cluster yet makes it KILLED at once, and Delete.
//
// What each method needs: Get, List and GetLogs READ; Update, Stop and Delete WRITE on the
// experiment; Create WRITE on the project.

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/authz/authorizer.h"
#include "common/compute/clusters.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"
#include "services/experiment/cluster_directory.h"
#include "services/experiment/controller.h"
#include "submarine/experiment/v1/experiment.pb.h"

namespace submarine::experiment {

inline constexpr char kErrorDomain[] = "experiment.submarine.io";

class ExperimentManager {
 public:
  // Whether a resource named by a spec exists and the caller may read it: OK, or
  // INVALID_ARGUMENT naming the field.
  using ReadCheck = std::function<absl::Status(const rpc::CallInfo& call, const std::string& name,
                                               const std::string& field)>;
  // The environment profile `name` as the spec's environment (image, pip and conda dependencies)
  // if the caller may read it; INVALID_ARGUMENT naming the field if not.
  using EnvironmentLookup = std::function<absl::StatusOr<v1::EnvironmentRef>(
      const rpc::CallInfo& call, const std::string& name, const std::string& field)>;
  struct Deps {
    db::ConnectionPool* pool;
    authz::Authorizer* authorizer;
    const api::Idempotency* idempotency;
    const Clock* clock;
    IdGenerator* ids;
    const compute::Clusters* clusters;  // where experiments run, by name
    Controller* controller;
    // The computeClusters/* records (who may use a cluster, its capacity); null: every cluster
    // in `clusters` is open to everyone.
    ClusterDirectory* directory;
    std::function<void()> wake;  // starts a controller pass now
    EnvironmentLookup lookup_environment;
    // The project's default compute cluster ("computeClusters/{id}", "" = none), for specs that
    // name none; null: "local".
    std::function<absl::StatusOr<std::string>(const rpc::CallInfo& call,
                                              const std::string& project)>
        default_cluster;
    // Whether a git credential named by a spec exists and is the caller's.
    ReadCheck check_credential;
  };
  explicit ExperimentManager(Deps deps);

  absl::StatusOr<v1::Experiment> Create(const v1::CreateExperimentRequest& request,
                                        const rpc::CallInfo& call);
  absl::StatusOr<v1::Experiment> Get(const std::string& name, const rpc::CallInfo& call);
  absl::StatusOr<v1::ListExperimentsResponse> List(const v1::ListExperimentsRequest& request,
                                                   const rpc::CallInfo& call);
  absl::StatusOr<v1::Experiment> Update(const v1::UpdateExperimentRequest& request,
                                        const rpc::CallInfo& call);
  absl::StatusOr<v1::Experiment> Delete(const v1::DeleteExperimentRequest& request,
                                        const rpc::CallInfo& call);
  absl::StatusOr<v1::Experiment> Stop(const v1::StopExperimentRequest& request,
                                      const rpc::CallInfo& call);
  // A finished experiment runs again as a new attempt (WRITE).
  absl::StatusOr<v1::Experiment> Retry(const v1::RetryExperimentRequest& request,
                                       const rpc::CallInfo& call);
  // A new experiment from this one's spec with the request's overrides (READ on the source,
  // WRITE on the project).
  absl::StatusOr<v1::Experiment> Clone(const v1::CloneExperimentRequest& request,
                                       const rpc::CallInfo& call);
  // Replaces the spec of an experiment still waiting for admission (PENDING); after that its
  // spec is what ran or runs: FAILED_PRECONDITION naming the state. (Apache Submarine's PATCH.)
  absl::StatusOr<v1::Experiment> ReplaceSpec(const std::string& name,
                                             const v1::ExperimentSpec& spec,
                                             const rpc::CallInfo& call);
  absl::StatusOr<v1::ExperimentLogs> GetLogs(const v1::GetExperimentLogsRequest& request,
                                             const rpc::CallInfo& call);
  // Receives each message of a log stream; false when the client is gone.
  using LogSink = std::function<bool(const v1::ExperimentLogs&)>;
  // Streams one task's log from request.offset (READ, checked before anything is sent, and again
  // every few seconds while following). Each message carries the bytes after the previous one
  // (at most 1 MiB). Without follow the stream ends at the log's current end (at least one
  // message); with follow, a quiet log is read again every 200 ms until the task has finished
  // (the last message has `complete`), the experiment ended without running it, or
  // `cancelled()` (polled meanwhile) is true: CANCELLED then, and when `send` fails. A retried
  // experiment's new attempt is followed from its start. Errors as GetLogs.
  absl::Status StreamLogs(const v1::StreamExperimentLogsRequest& request, const rpc::CallInfo& call,
                          const LogSink& send, const std::function<bool()>& cancelled);

 private:
  // The clusters a spec may name (re-read from the records when it names an unknown one).
  std::vector<std::string> ClusterNames(const v1::ExperimentSpec& spec) const;
  // Whether `project` may run the resolved spec on its cluster (allowed projects, capacity).
  absl::Status CheckCluster(const std::string& project, const v1::ExperimentSpec& resolved) const;
  // What reading one task's log needs, resolved from the experiment's row.
  struct LogSource {
    v1::ExperimentLogs logs;  // tasks and task filled in
    std::optional<compute::TaskRef> task;
    compute::Backend* backend = nullptr;  // null until the task's workload exists
    std::optional<std::string> workload_id;
    bool final_state = false;  // the experiment has ended
  };
  // Checks READ, finds the experiment and the task (default: the first): errors as GetLogs.
  absl::StatusOr<LogSource> ResolveLogs(const std::string& name, const std::string& task,
                                        const rpc::CallInfo& call);
  // At most `max` bytes of the log from `offset` (nothing when the task has not started).
  absl::StatusOr<v1::ExperimentLogs> ReadLogs(const LogSource& source, int64_t offset, int64_t max);

  // A named environment becomes "projects/{p}/environments/{e}" and must exist (and be readable
  // by the caller) when the environment service is a peer.
  // `spec` with the project's default compute cluster when it names none.
  absl::StatusOr<v1::ExperimentSpec> WithDefaultCluster(const v1::ExperimentSpec& spec,
                                                        const std::string& parent,
                                                        const rpc::CallInfo& call) const;
  absl::Status ResolveEnvironment(const rpc::CallInfo& call, const std::string& parent,
                                  v1::ExperimentSpec* resolved);
  Deps d_;
};

// Splits "projects/{p}/experiments/{e}"; INVALID_ARGUMENT naming `field` if malformed.
absl::Status ParseExperimentName(const std::string& name, const std::string& field,
                                 std::string* project, std::string* experiment_id);

}  // namespace submarine::experiment
