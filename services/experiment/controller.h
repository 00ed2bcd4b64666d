#pragma once
// The controller: the experiment service's one control loop, run by the leader replica
// (ServiceHost::AddLeaderLoop), woken by requests and otherwise every control interval.
// PostgreSQL is the truth; each pass, for every unfinished experiment in admission order
// (priority, then age):
//   PENDING    take a quota lease for the whole job (gang: every replica or nothing) → ACCEPTED,
//              or stay PENDING with the permission service's reason;
//   ACCEPTED   Backend::Submit (idempotent) → CREATED; a spec the backend refuses → FAILED;
//   CREATED, RUNNING  the backend's phase → RUNNING / SUCCEEDED / FAILED / KILLED, tasks copied;
//              a workload the backend no longer holds → FAILED with the reason (never deleted);
//              max run time exceeded → stopped;
//   a stop asked for → Backend::Stop (KILLED once the backend says so).
// Then it heals the other way: a workload whose experiment is gone is deleted. A backend or
// permission-service error (UNAVAILABLE) changes nothing: the pass logs it and the next retries.
// Leases are heart-beaten while held and released when the experiment ends.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compute/clusters.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/experiment/experiment_spec.h"
#include "services/experiment/experiment_store.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::experiment {

// Quota leases from the permission service, acting for the experiment's owner.
class QuotaClient {
 public:
  virtual ~QuotaClient() = default;
  // RESOURCE_EXHAUSTED with the reason when the owner's quota cannot hold `lease`.
  virtual absl::StatusOr<permission::v1::Lease> Acquire(const permission::v1::Lease& lease,
                                                        int ttl_seconds,
                                                        const std::string& request_id) = 0;
  virtual absl::Status Heartbeat(const std::string& lease_name, const std::string& user) = 0;
  virtual absl::Status Release(const std::string& lease_name, const std::string& user) = 0;
};

// The credential store, for the secrets a workload needs (a private repository's token).
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // The plain secret of credential `name` ("users/{u}/credentials/{id}"), read for `user`;
  // NOT_FOUND, PERMISSION_DENIED (not the user's), or UNAVAILABLE when it cannot be asked.
  virtual absl::StatusOr<std::string> Access(const std::string& name, const std::string& user) = 0;
};

// Workload identity: API tokens of the submitter scoped to the experiment's project
// (IdentityService.CreateApiToken / RevokeApiToken as the service acting for the user).
class WorkloadTokens {
 public:
  virtual ~WorkloadTokens() = default;
  struct Token {
    std::string name;    // "users/{u}/tokens/{id}"
    std::string secret;  // the JWT
  };
  virtual absl::StatusOr<Token> Mint(const std::string& user, const std::string& project,
                                     const std::string& display_name, std::chrono::seconds ttl) = 0;
  // OK when revoked or already gone.
  virtual absl::Status Revoke(const std::string& name, const std::string& user) = 0;
};
std::unique_ptr<WorkloadTokens> MakeGrpcWorkloadTokens(const std::string& address,
                                                       const std::string& service,
                                                       std::chrono::milliseconds timeout);

// CredentialService.AccessCredentialSecret over gRPC as Principal{SERVICE, service, user}.
std::unique_ptr<CredentialSource> MakeGrpcCredentialSource(const std::string& address,
                                                           const std::string& service,
                                                           std::chrono::milliseconds timeout);

// QuotaService over gRPC as Principal{SERVICE, service, user}.
std::unique_ptr<QuotaClient> MakeGrpcQuotaClient(const std::string& address,
                                                 const std::string& service,
                                                 std::chrono::milliseconds timeout);

class Controller {
 public:
  struct Options {
    std::chrono::milliseconds stop_grace{10000};
    int lease_ttl_seconds = 60;
    // Replicas running at once on the "local" cluster at most (0: no limit); the next job waits
    // in ACCEPTED until it fits (the whole job: gang). Other clusters queue for themselves.
    int max_running_tasks = 0;
    // Waiting this long adds 1 to a job's priority in the queue's order (0: no aging).
    std::chrono::seconds priority_aging{600};
    // A job that waits for quota (or for room on the local cluster) stops a running job of
    // lower priority in the same quota (on the same cluster): SIGTERM, the stop grace to
    // checkpoint, then it is requeued as a new attempt, its history saying by whom. One at a
    // time: the next only once the freed room proved too little.
    bool preemption = false;
    // Fair share between projects (each belongs to one team): among waiting jobs of equal
    // priority, the project holding the fewest tasks per unit of weight goes first. Weights by
    // "projects/{p}" (at least 1; absent: 1).
    std::map<std::string, uint32_t> fair_share_weights;
    // Where git credentials come from (not owned); null: specs naming one fail with a reason.
    CredentialSource* credentials = nullptr;
    // The capacity of a cluster (by id), when it has one: the experiments launched there hold
    // at most that much at once (the whole job, gang); the next one waits in ACCEPTED, saying
    // so. Unset: no cluster has a capacity.
    std::function<std::optional<compute::Resources>(const std::string&)> capacity_of;
    // Workload identity (not owned; null: tasks get no token): each attempt's tasks get
    // SUBMARINE_TOKEN (a secret), revoked when the attempt ends.
    WorkloadTokens* tokens = nullptr;
    // How long an identity token lives on a cluster that can renew it while the tasks run
    // (Backend::UpdatesSecretsOf): renewed at half its life, so a leaked one soon lapses.
    // Elsewhere a token lives as long as the job may run (max run time + 5 min, else 24 h).
    std::chrono::seconds identity_token_ttl{3600};
    // SUBMARINE_SERVER of every task ("" = not set).
    std::string task_server;
    // Put first on every task's PYTHONPATH ("" = not set): `import submarine` works in tasks.
    std::string sdk_path;
    // How the local cluster installs an environment's pip dependencies (a shared virtualenv
    // per distinct list); dir "" = not installed (the experiment's warnings say so).
    PythonEnvs python_envs;
  };
  // `quota` may be null (no quotas: every experiment is admitted).
  // Each experiment runs on the cluster its resolved spec names (compute_cluster).
  Controller(db::ConnectionPool* pool, const compute::Clusters* clusters, QuotaClient* quota,
             const Clock& clock, Options options);

  // One pass (the leader loop's body). Errors of single experiments are logged, not returned.
  absl::Status RunOnce();

  // The workload id of an experiment's attempt (a valid Kubernetes name).
  static std::string WorkloadId(const v1::Experiment& experiment);

  // After an experiment row was deleted: removes its workload and logs and gives its lease
  // back. Errors are logged; the next pass heals what is left.
  void Forget(const StoredExperiment& stored);
  // Gives back the lease of an experiment whose attempt ended (also outside a pass: stopped
  // before launch), and revokes the attempt's workload identity token.
  void ReleaseLease(const StoredExperiment& stored);

 private:
  enum class Admission { kAdmitted, kNoQuota, kWaiting };
  // kAdmitted: ACCEPTED, `s` is then what is stored; kNoQuota: the owner's quota refused it.
  Admission Admit(StoredExperiment& s);
  // Says why a waiting (PENDING or ACCEPTED) experiment waits (stored only when it changed).
  void SetPendingReason(StoredExperiment& s, const std::string& reason);
  // What launched, unfinished jobs hold, updated as jobs launch within a pass.
  struct Room {
    int local_tasks = 0;                             // replicas on "local"
    std::map<std::string, compute::Resources> held;  // by cluster
    std::set<std::string> full;                      // a job already waits for room there
  };
  // False when it waits for room on its cluster (max_running_tasks, capacity).
  bool Launch(StoredExperiment& s, Room* room);
  // Options::preemption: stops the lowest-priority (then newest) running job of `unfinished`
  // that `same_pool` selects and `waiting` outranks, unless one is already being preempted.
  void Preempt(StoredExperiment& waiting, const std::vector<StoredExperiment*>& unfinished,
               const std::function<bool(const StoredExperiment&)>& same_pool);
  void Observe(StoredExperiment& s, const compute::WorkloadStatus* status);
  void RequestStop(StoredExperiment& s);
  // After a FAILED transition in `tx`: the next attempt when the retry policy allows another.
  absl::Status RetryIfAllowed(pqxx::work& tx, StoredExperiment& row,
                              std::chrono::system_clock::time_point now);
  void HeartbeatLeases(const std::vector<StoredExperiment*>& unfinished);
  // Replaces the identity tokens of running attempts at half their life, where the cluster can
  // deliver a new one (Backend::UpdateSecrets): mint, deliver, record, revoke the old one.
  void RenewTokens(const std::vector<StoredExperiment*>& unfinished);
  // `alive`: uids of experiments known to exist (no need to ask the database about them).
  void Heal(compute::Backend* backend, const std::vector<compute::WorkloadStatus>& workloads,
            const std::set<std::string>& alive);
  // The backend of the experiment's cluster; nullptr if this installation lost that cluster.
  compute::Backend* BackendOf(const StoredExperiment& s) const;
  // Runs `change` on the locked, re-read row if it is still in the state (and attempt) of `s`;
  // ABORTED otherwise. On success `s` becomes what was stored.
  absl::Status Change(StoredExperiment& s,
                      const std::function<absl::Status(pqxx::work&, StoredExperiment&)>& change);

  db::ConnectionPool* pool_;
  const compute::Clusters* clusters_;
  QuotaClient* quota_;
  const Clock& clock_;
  Options options_;
  std::mutex mu_;
  std::map<std::string, std::chrono::system_clock::time_point> heartbeats_;  // lease → last
  // The unfinished experiments as last read (RunOnce's own: only the leader loop touches it).
  std::unordered_map<int64_t, StoredExperiment> cache_;
  std::set<std::string> released_;  // leases given back during the current pass
  // When each workload token minted (or renewed) by this controller expires; a token missing
  // here (minted before a restart) is renewed at the next pass.
  std::map<std::string, std::chrono::system_clock::time_point> token_expiry_;  // guarded by mu_
};

}  // namespace submarine::experiment
