#include "services/experiment/controller.h"

#include <grpcpp/grpcpp.h>

#include <set>
#include <tuple>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/auth/principal.h"
#include "common/compute/quantity.h"
#include "common/log/log.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "services/experiment/experiment_spec.h"
#include "services/experiment/transitions.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::experiment {
namespace {

using permission::v1::Lease;
using permission::v1::QuotaService;

constexpr char kOwnerLabel[] = "submarine.experiment";
// The start of the stop reason of a preempted experiment (it is requeued once KILLED).
constexpr char kPreemptedBy[] = "preempted by ";
// The start of the reason of an attempt the retry policy started.
constexpr char kRetryReason[] = "retry ";
constexpr char kUidLabel[] = "submarine.experiment-uid";
constexpr char kSystem[] = "services/experiment";

// A call to the permission service as `service` acting for `user`, within `timeout`.
void PrepareCall(grpc::ClientContext* ctx, const std::string& service, const std::string& user,
                 std::chrono::milliseconds timeout, const std::string& request_id = "") {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  rpc::ActAs(ctx, auth::ServicePrincipal(service, user), request_id);
}

class GrpcQuotaClient final : public QuotaClient {
 public:
  GrpcQuotaClient(const std::string& address, std::string service,
                  std::chrono::milliseconds timeout)
      : stub_(QuotaService::NewStub(rpc::MakeChannel(address))),
        service_(std::move(service)),
        timeout_(timeout) {}

  absl::StatusOr<Lease> Acquire(const Lease& lease, int ttl_seconds,
                                const std::string& request_id) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, UserOf(lease.owner()), timeout_, request_id);
    permission::v1::AcquireLeaseRequest req;
    *req.mutable_lease() = lease;
    req.set_ttl_seconds(ttl_seconds);
    req.set_request_id(request_id);
    Lease out;
    grpc::Status st = stub_->AcquireLease(&ctx, req, &out);
    if (!st.ok()) return FromGrpcStatus(st);
    return out;
  }
  absl::Status Heartbeat(const std::string& name, const std::string& user) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, user, timeout_);
    permission::v1::HeartbeatLeaseRequest req;
    req.set_name(name);
    Lease out;
    grpc::Status st = stub_->HeartbeatLease(&ctx, req, &out);
    return st.ok() ? absl::OkStatus() : FromGrpcStatus(st);
  }
  absl::Status Release(const std::string& name, const std::string& user) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, user, timeout_);
    permission::v1::ReleaseLeaseRequest req;
    req.set_name(name);
    permission::v1::ReleaseLeaseResponse out;
    grpc::Status st = stub_->ReleaseLease(&ctx, req, &out);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();  // lapsed
    return st.ok() ? absl::OkStatus() : FromGrpcStatus(st);
  }

 private:
  static std::string UserOf(const std::string& owner) {
    return absl::StartsWith(owner, "users/") ? owner.substr(6) : std::string();
  }

  std::unique_ptr<QuotaService::Stub> stub_;
  const std::string service_;
  const std::chrono::milliseconds timeout_;
};

class GrpcWorkloadTokens final : public WorkloadTokens {
 public:
  GrpcWorkloadTokens(const std::string& address, std::string service,
                     std::chrono::milliseconds timeout)
      : stub_(permission::v1::IdentityService::NewStub(rpc::MakeChannel(address))),
        service_(std::move(service)),
        timeout_(timeout) {}

  absl::StatusOr<Token> Mint(const std::string& user, const std::string& project,
                             const std::string& display_name, std::chrono::seconds ttl) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, user, timeout_);
    permission::v1::CreateApiTokenRequest req;
    req.set_parent(absl::StrCat("users/", user));
    req.set_display_name(display_name);
    req.set_ttl_seconds(ttl.count());
    req.set_scope(project);
    permission::v1::CreateApiTokenResponse out;
    grpc::Status st = stub_->CreateApiToken(&ctx, req, &out);
    if (!st.ok()) return FromGrpcStatus(st);
    return Token{out.token().name(), out.secret()};
  }
  absl::Status Revoke(const std::string& name, const std::string& user) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, user, timeout_);
    permission::v1::RevokeApiTokenRequest req;
    req.set_name(name);
    permission::v1::ApiToken out;
    grpc::Status st = stub_->RevokeApiToken(&ctx, req, &out);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
    return st.ok() ? absl::OkStatus() : FromGrpcStatus(st);
  }

 private:
  std::unique_ptr<permission::v1::IdentityService::Stub> stub_;
  const std::string service_;
  const std::chrono::milliseconds timeout_;
};

class GrpcCredentialSource final : public CredentialSource {
 public:
  GrpcCredentialSource(const std::string& address, std::string service,
                       std::chrono::milliseconds timeout)
      : stub_(permission::v1::CredentialService::NewStub(rpc::MakeChannel(address))),
        service_(std::move(service)),
        timeout_(timeout) {}

  absl::StatusOr<std::string> Access(const std::string& name, const std::string& user) override {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, service_, user, timeout_);
    permission::v1::AccessCredentialSecretRequest req;
    req.set_name(name);
    permission::v1::AccessCredentialSecretResponse out;
    grpc::Status st = stub_->AccessCredentialSecret(&ctx, req, &out);
    if (!st.ok()) return FromGrpcStatus(st);
    return out.secret();
  }

 private:
  std::unique_ptr<permission::v1::CredentialService::Stub> stub_;
  const std::string service_;
  const std::chrono::milliseconds timeout_;
};

std::string UserOf(const v1::Experiment& e) {
  return absl::StartsWith(e.owner(), "users/") ? e.owner().substr(6) : std::string();
}

v1::State StateOf(compute::Phase phase) {
  switch (phase) {
    case compute::Phase::kPending:
      return v1::PENDING;
    case compute::Phase::kRunning:
      return v1::RUNNING;
    case compute::Phase::kSucceeded:
      return v1::SUCCEEDED;
    case compute::Phase::kFailed:
      return v1::FAILED;
    case compute::Phase::kKilled:
      return v1::KILLED;
  }
  return v1::STATE_UNSPECIFIED;
}

// How often usage figures alone are written to an experiment's row.
constexpr auto kUsageRecordPeriod = std::chrono::seconds(15);

v1::Task ToTask(const compute::TaskStatus& t) {
  v1::Task out;
  out.set_role(t.task.role);
  out.set_index(t.task.index);
  out.set_attempt(t.attempt);
  out.set_state(StateOf(t.phase));
  if (t.exit_code) out.set_exit_code(*t.exit_code);
  if (t.signal) out.set_signal(*t.signal);
  out.set_host(t.host);
  if (t.start_time) *out.mutable_start_time() = ToProto(*t.start_time);
  if (t.finish_time) *out.mutable_finish_time() = ToProto(*t.finish_time);
  out.set_message(t.message);
  if (t.usage) {
    out.set_cpu_seconds(t.usage->cpu_seconds);
    out.set_memory_bytes(t.usage->memory_bytes);
    out.set_max_memory_bytes(t.usage->max_memory_bytes);
    if (t.usage->gpu_memory_bytes) {
      out.set_gpu_memory_bytes(*t.usage->gpu_memory_bytes);
      out.set_max_gpu_memory_bytes(t.usage->max_gpu_memory_bytes);
      out.set_gpu_utilization(t.usage->gpu_utilization);
    }
  }
  return out;
}

// The task without its usage figures, which change all the time.
std::string WithoutUsage(v1::Task t) {
  t.clear_cpu_seconds();
  t.clear_memory_bytes();
  t.clear_max_memory_bytes();
  t.clear_gpu_memory_bytes();
  t.clear_max_gpu_memory_bytes();
  t.clear_gpu_utilization();
  return t.SerializeAsString();
}

enum class TasksDiffer { kNo, kOnlyUsage, kYes };

TasksDiffer CompareTasks(const v1::Experiment& e, const std::vector<v1::Task>& tasks) {
  if (e.tasks_size() != static_cast<int>(tasks.size())) return TasksDiffer::kYes;
  bool usage = false;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const v1::Task& stored = e.tasks(static_cast<int>(i));
    if (stored.SerializeAsString() == tasks[i].SerializeAsString()) continue;
    if (WithoutUsage(stored) != WithoutUsage(tasks[i])) return TasksDiffer::kYes;
    usage = true;
  }
  return usage ? TasksDiffer::kOnlyUsage : TasksDiffer::kNo;
}

// "projects/{p}" of an experiment.
std::string ProjectOf(const v1::Experiment& e) {
  return e.name().substr(0, e.name().find("/experiments/"));
}

int Replicas(const v1::Experiment& e) {
  int n = 0;
  for (const auto& [name, role] : e.reproducibility().resolved_spec().spec()) n += role.replicas();
  return n;
}

// An error that may go away by itself (the other service restarting): the launch waits.
bool IsTransient(const absl::Status& st) {
  const absl::StatusCode code = st.code();
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnknown;
}

// "cpu=2,memory=1Gi", or "nothing".
std::string HeldText(const compute::Resources& r) {
  std::string text = compute::FormatResources(r);
  return text.empty() ? "nothing" : text;
}

// Whether `r` asks for more than `capacity` of something the capacity limits.
bool Exceeds(const compute::Resources& r, const compute::Resources& capacity) {
  auto over = [](int64_t need, int64_t has) { return has > 0 && need > has; };
  return over(r.cpu_millis, capacity.cpu_millis) || over(r.memory_bytes, capacity.memory_bytes) ||
         over(r.gpus, capacity.gpus);
}

// What the whole job holds while it runs: every replica of every role, and one experiment.
Lease LeaseFor(const v1::Experiment& e) {
  Lease lease;
  lease.set_owner(e.owner());
  lease.set_project(ProjectOf(e));
  lease.set_holder(e.name());
  int64_t cpu = 0, memory = 0, gpus = 0;
  for (const auto& [name, role] : e.reproducibility().resolved_spec().spec()) {
    auto r = compute::ParseResources(role.resources(), "resources").value_or(compute::Resources{});
    cpu += r.cpu_millis * role.replicas();
    memory += (r.memory_bytes + (1 << 20) - 1) / (1 << 20) * role.replicas();
    gpus += r.gpus * role.replicas();
  }
  auto* res = lease.mutable_resources();
  if (cpu > 0) res->set_cpu_millis(cpu);
  if (memory > 0) res->set_memory_mib(memory);
  if (gpus > 0) res->set_gpus(gpus);
  res->set_experiments(1);
  return lease;
}

}  // namespace

std::unique_ptr<WorkloadTokens> MakeGrpcWorkloadTokens(const std::string& address,
                                                       const std::string& service,
                                                       std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcWorkloadTokens>(address, service, timeout);
}

std::unique_ptr<CredentialSource> MakeGrpcCredentialSource(const std::string& address,
                                                           const std::string& service,
                                                           std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcCredentialSource>(address, service, timeout);
}

std::unique_ptr<QuotaClient> MakeGrpcQuotaClient(const std::string& address,
                                                 const std::string& service,
                                                 std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcQuotaClient>(address, service, timeout);
}

Controller::Controller(db::ConnectionPool* pool, const compute::Clusters* clusters,
                       QuotaClient* quota, const Clock& clock, Options options)
    : pool_(pool),
      clusters_(clusters),
      quota_(quota),
      clock_(clock),
      options_(std::move(options)) {}

compute::Backend* Controller::BackendOf(const StoredExperiment& s) const {
  return clusters_->Find(ClusterOf(s.experiment));
}

std::string Controller::WorkloadId(const v1::Experiment& e) {
  std::string hex = absl::StrReplaceAll(e.uid(), {{"-", ""}});
  return absl::StrCat("exp-", hex.substr(0, 20), "-", e.attempt());
}

absl::Status Controller::Change(
    StoredExperiment& s,
    const std::function<absl::Status(pqxx::work&, StoredExperiment&)>& change) {
  StoredExperiment changed;
  absl::Status st = pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    auto now = ExperimentStore::Lock(tx, s.id);
    if (!now || now->experiment.state() != s.experiment.state() ||
        now->experiment.attempt() != s.experiment.attempt()) {
      return absl::AbortedError("changed concurrently");  // the next pass sees the new state
    }
    SUBMARINE_RETURN_IF_ERROR(change(tx, *now));
    changed = std::move(*now);
    return absl::OkStatus();
  });
  if (st.ok()) s = std::move(changed);  // what is stored now
  return st;
}

absl::Status Controller::RunOnce() {
  {
    std::lock_guard lock(mu_);
    released_.clear();
  }
  // Every unfinished experiment, in admission order. Rows unchanged since the last pass are
  // not read (nor parsed) again: at thousands of running jobs that is most of a pass.
  std::vector<StoredExperiment*> unfinished;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(db::kNoDeadline, [&](pqxx::transaction_base& tx) {
    const std::vector<ExperimentStore::Version> versions = ExperimentStore::UnfinishedVersions(tx);
    std::vector<int64_t> stale;
    for (const auto& v : versions) {
      auto it = cache_.find(v.id);
      if (it == cache_.end() || !v.Matches(it->second)) stale.push_back(v.id);
    }
    if (!stale.empty()) {
      for (StoredExperiment& fresh : ExperimentStore::ByIds(tx, stale)) {
        const int64_t id = fresh.id;
        cache_[id] = std::move(fresh);
      }
    }
    std::unordered_map<int64_t, StoredExperiment> kept;
    kept.reserve(versions.size());
    for (const auto& v : versions) {
      auto it = cache_.find(v.id);
      if (it == cache_.end()) continue;  // finished between the two reads
      kept.emplace(v.id, std::move(it->second));
    }
    cache_ = std::move(kept);
    for (const auto& v : versions) {
      auto it = cache_.find(v.id);
      if (it != cache_.end()) unfinished.push_back(&it->second);
    }
    return absl::OkStatus();
  }));
  // Every cluster's workloads; a cluster that cannot be listed is not observed this pass (and
  // nothing on it changes state).
  std::map<std::string, std::vector<compute::WorkloadStatus>> workloads;
  std::map<std::string, const compute::WorkloadStatus*> by_id;
  for (const auto& [name, backend] : clusters_->all()) {
    auto listed = backend->List();
    if (!listed.ok()) {
      log::Get("controller")
          ->warn("cannot list the workloads of cluster {} ({}); observing nothing there this pass",
                 name, Message(listed.status()));
      continue;
    }
    workloads[name] = std::move(*listed);
  }
  for (const auto& [name, list] : workloads) {
    for (const auto& w : list) by_id[w.id] = &w;
  }
  // Queue order: priority, raised by one for every aging period a job has waited (so none
  // starves); then fair share — the project whose launched jobs hold the fewest tasks for its
  // weight goes first; then age. Keys are computed once: a pass may order 10,000 jobs.
  {
    const auto now = clock_.Now();
    std::map<std::string, int64_t> tasks_held;  // by project: replicas of launched jobs
    for (const StoredExperiment* s : unfinished) {
      if (s->experiment.state() >= v1::CREATED) {
        tasks_held[ProjectOf(s->experiment)] += Replicas(s->experiment);
      }
    }
    using Key = std::tuple<int64_t, double, int64_t, int32_t>;  // -priority, share, created
    std::vector<std::pair<Key, StoredExperiment*>> keyed;
    keyed.reserve(unfinished.size());
    for (StoredExperiment* s : unfinished) {
      const v1::Experiment& e = s->experiment;
      int64_t priority = e.spec().priority();
      if (options_.priority_aging.count() > 0 &&
          (e.state() == v1::PENDING || e.state() == v1::ACCEPTED)) {
        const auto waited = now - db::Timestamp::FromProto(e.create_time()).ToTimePoint();
        priority += std::max<int64_t>(0, waited / options_.priority_aging);
      }
      const std::string project = ProjectOf(e);
      auto held = tasks_held.find(project);
      auto weight = options_.fair_share_weights.find(project);
      const double share =
          static_cast<double>(held == tasks_held.end() ? 0 : held->second) /
          (weight == options_.fair_share_weights.end() ? 1.0 : static_cast<double>(weight->second));
      keyed.push_back(
          {Key{-priority, share, e.create_time().seconds(), e.create_time().nanos()}, s});
    }
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t k = 0; k < keyed.size(); ++k) unfinished[k] = keyed[k].second;
  }
  Room room;
  for (const StoredExperiment* s : unfinished) {
    if (s->experiment.state() < v1::CREATED) continue;
    const std::string& cluster = ClusterOf(s->experiment);
    if (cluster == "local") room.local_tasks += Replicas(s->experiment);
    room.held[cluster] += TotalResources(s->experiment.reproducibility().resolved_spec());
  }
  // Owners whose quota refused an experiment in this pass: their later experiments wait behind
  // it (strict order per owner, so a large job is not overtaken for ever by small ones).
  std::set<std::string> quota_full;
  std::set<std::string> preempted_for;  // clusters where a waiting job already preempted
  for (StoredExperiment* row : unfinished) {
    StoredExperiment& s = *row;  // changed in place by each transition: the cache stays current
    v1::State state = s.experiment.state();
    if (s.stop_reason && state >= v1::CREATED) RequestStop(s);
    const std::string owner = s.experiment.owner();
    if (state == v1::PENDING && !quota_full.count(owner)) {
      const Admission admission = Admit(s);
      if (admission == Admission::kAdmitted) {
        state = v1::ACCEPTED;  // and launch it at once
      } else if (s.experiment.state() == v1::PENDING) {
        quota_full.insert(owner);
        if (admission == Admission::kNoQuota && options_.preemption) {
          Preempt(s, unfinished,
                  [&](const StoredExperiment& other) { return other.experiment.owner() == owner; });
        }
      }
    }
    if (state == v1::ACCEPTED) {
      const std::string cluster = ClusterOf(s.experiment);
      if (!Launch(s, &room) && preempted_for.insert(cluster).second && options_.preemption) {
        Preempt(s, unfinished, [&cluster](const StoredExperiment& other) {
          return ClusterOf(other.experiment) == cluster;
        });
      }
    } else if (state >= v1::CREATED && workloads.count(ClusterOf(s.experiment))) {
      auto it = s.workload_id ? by_id.find(*s.workload_id) : by_id.end();
      Observe(s, it == by_id.end() ? nullptr : it->second);
    }
  }
  HeartbeatLeases(unfinished);
  RenewTokens(unfinished);
  std::set<std::string> alive;  // uids of the experiments just observed: no need to ask
  for (const StoredExperiment* s : unfinished) alive.insert(s->experiment.uid());
  for (const auto& [name, list] : workloads) Heal(clusters_->Find(name), list, alive);
  return absl::OkStatus();
}

Controller::Admission Controller::Admit(StoredExperiment& s) {
  const v1::Experiment& e = s.experiment;
  std::optional<Lease> lease;
  std::string user = UserOf(e);
  if (quota_ != nullptr && !user.empty()) {
    auto got = quota_->Acquire(LeaseFor(e), options_.lease_ttl_seconds,
                               absl::StrCat(e.uid(), "-lease-", e.attempt()));
    if (!got.ok()) {
      const absl::StatusCode code = got.status().code();
      if (code == absl::StatusCode::kResourceExhausted ||
          code == absl::StatusCode::kPermissionDenied) {
        SetPendingReason(s, absl::StrCat("waiting for quota: ", Message(got.status())));
        if (code == absl::StatusCode::kResourceExhausted) return Admission::kNoQuota;
      } else if (code == absl::StatusCode::kUnavailable ||
                 code == absl::StatusCode::kDeadlineExceeded ||
                 code == absl::StatusCode::kAborted || code == absl::StatusCode::kInternal ||
                 code == absl::StatusCode::kUnknown) {
        // Transient: the permission service could not answer. The state stays; the reason says
        // what it waits for.
        SetPendingReason(s, absl::StrCat("waiting for the permission service to grant quota: ",
                                         Message(got.status())));
      } else {
        // A definite refusal (the owner is gone, the request is malformed): it will never run.
        (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
          return Transition(tx, now, v1::FAILED,
                            absl::StrCat("admission refused: ", Message(got.status())),
                            clock_.Now(), "", kSystem);
        });
      }
      return Admission::kWaiting;
    }
    lease = *got;
  }
  absl::Status st = Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
    if (lease) now.lease = lease->name();
    std::string reason = lease ? absl::StrCat("admitted with lease ", lease->name()) : "admitted";
    return Transition(tx, now, v1::ACCEPTED, reason, clock_.Now(), "", kSystem);
  });
  if (!st.ok() && lease) {
    // The experiment was stopped or deleted meanwhile: give the lease back.
    (void)quota_->Release(lease->name(), user);
  }
  return st.ok() ? Admission::kAdmitted : Admission::kWaiting;
}

void Controller::Preempt(StoredExperiment& waiting,
                         const std::vector<StoredExperiment*>& unfinished,
                         const std::function<bool(const StoredExperiment&)>& same_pool) {
  const int64_t priority = waiting.experiment.spec().priority();
  StoredExperiment* victim = nullptr;
  for (StoredExperiment* row : unfinished) {
    const StoredExperiment& o = *row;
    if (row == &waiting || !same_pool(o)) continue;
    if (o.stop_reason && absl::StartsWith(*o.stop_reason, kPreemptedBy) &&
        !IsFinal(o.experiment.state())) {
      return;  // one is being preempted: see what its room is worth first
    }
    const v1::State state = o.experiment.state();
    if (o.stop_reason || (state != v1::CREATED && state != v1::RUNNING)) continue;
    if (o.experiment.spec().priority() >= priority) continue;
    auto newer = [](const v1::Experiment& a, const v1::Experiment& b) {
      return std::pair(a.create_time().seconds(), a.create_time().nanos()) >
             std::pair(b.create_time().seconds(), b.create_time().nanos());
    };
    if (victim == nullptr ||
        o.experiment.spec().priority() < victim->experiment.spec().priority() ||
        (o.experiment.spec().priority() == victim->experiment.spec().priority() &&
         newer(o.experiment, victim->experiment))) {
      victim = row;
    }
  }
  if (victim == nullptr) return;
  const std::string why =
      absl::StrCat(kPreemptedBy, waiting.experiment.name(), " (priority ", priority, " over ",
                   victim->experiment.spec().priority(), ")");
  absl::Status st = Change(*victim, [&](pqxx::work& tx, StoredExperiment& row) {
    row.stop_reason = why;
    Touch(tx, row, clock_.Now(), "");
    return absl::OkStatus();
  });
  if (!st.ok()) return;
  log::Get("controller")
      ->info("{} preempted by {}", victim->experiment.name(), waiting.experiment.name());
  RequestStop(*victim);
  SetPendingReason(waiting, absl::StrCat(waiting.experiment.state_reason(), "; preempting ",
                                         victim->experiment.name()));
}

void Controller::SetPendingReason(StoredExperiment& s, const std::string& reason) {
  if (reason == s.experiment.state_reason()) return;
  log::Get("controller")->info("{} is pending: {}", s.experiment.name(), reason);
  (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
    now.experiment.set_state_reason(reason);
    Touch(tx, now, clock_.Now(), "");
    return absl::OkStatus();
  });
}

bool Controller::Launch(StoredExperiment& s, Room* room) {
  const v1::Experiment& e = s.experiment;
  const int replicas = Replicas(e);
  compute::Backend* backend = BackendOf(s);
  if (backend == nullptr) {
    (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
      return Transition(
          tx, now, v1::FAILED,
          absl::StrCat("compute cluster \"", ClusterOf(e), "\" is no longer configured"),
          clock_.Now(), "", kSystem);
    });
    ReleaseLease(s);
    return true;
  }
  const bool local = ClusterOf(e) == "local";
  const int cap = local ? options_.max_running_tasks : 0;
  if (cap > 0 && replicas > cap) {
    (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
      return Transition(tx, now, v1::FAILED,
                        absl::StrCat("needs ", replicas,
                                     " tasks at once; the compute cluster "
                                     "runs at most ",
                                     cap),
                        clock_.Now(), "", kSystem);
    });
    ReleaseLease(s);
    return true;
  }
  if (cap > 0 && room->local_tasks + replicas > cap) {
    SetPendingReason(s, absl::StrCat("waiting for room on the compute cluster: ",
                                     std::min(room->local_tasks, cap), " of ", cap,
                                     " tasks running, ", replicas, " needed"));
    // Strict order: nothing behind it jumps the queue, so a large job is never starved.
    room->local_tasks = cap + 1;
    return false;
  }
  if (auto capacity = options_.capacity_of ? options_.capacity_of(ClusterOf(e)) : std::nullopt) {
    const compute::Resources need = TotalResources(e.reproducibility().resolved_spec());
    const std::string where = absl::StrCat("computeClusters/", ClusterOf(e));
    if (Exceeds(need, *capacity)) {
      (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
        return Transition(
            tx, now, v1::FAILED,
            absl::StrCat("needs ", compute::FormatResources(need), " at once; ", where,
                         " has a capacity of ", compute::FormatResources(*capacity)),
            clock_.Now(), "", kSystem);
      });
      ReleaseLease(s);
      return true;
    }
    compute::Resources& held = room->held[ClusterOf(e)];
    if (room->full.count(ClusterOf(e)) || Exceeds(held + need, *capacity)) {
      SetPendingReason(s, absl::StrCat("waiting for room on ", where, ": ", HeldText(held), " of ",
                                       compute::FormatResources(*capacity), " held, ",
                                       compute::FormatResources(need), " needed"));
      // Strict order, as above.
      room->full.insert(ClusterOf(e));
      return false;
    }
  }
  std::string id = WorkloadId(e);
  std::map<std::string, std::string> env;
  env["SUBMARINE_EXPERIMENT"] = e.name();
  env["SUBMARINE_EXPERIMENT_UID"] = e.uid();
  env["SUBMARINE_EXPERIMENT_ATTEMPT"] = absl::StrCat(e.attempt());
  if (!options_.task_server.empty()) env["SUBMARINE_SERVER"] = options_.task_server;
  if (!options_.sdk_path.empty()) {
    const auto& meta_env = e.reproducibility().resolved_spec().meta().env_vars();
    auto theirs = meta_env.find("PYTHONPATH");
    env["PYTHONPATH"] = theirs == meta_env.end() || theirs->second.empty()
                            ? options_.sdk_path
                            : absl::StrCat(options_.sdk_path, ":", theirs->second);
  }
  const bool on_host = backend->Kind() == "local";
  compute::WorkloadSpec workload = ToWorkload(e.reproducibility().resolved_spec(), id, env,
                                              {{kOwnerLabel, e.name()}, {kUidLabel, e.uid()}},
                                              on_host ? &options_.python_envs : nullptr);
  // The attempt's identity: a token of the submitter limited to the project, living as long as
  // the job may run, or for identity_token_ttl when the backend renews it while the workload
  // runs. A launch retried after a failed Submit gets a new one (the old is revoked).
  std::optional<WorkloadTokens::Token> token;
  const std::string user = UserOf(e);
  if (options_.tokens != nullptr && !user.empty()) {
    if (!e.workload_token().empty()) (void)options_.tokens->Revoke(e.workload_token(), user);
    std::chrono::seconds ttl = std::chrono::hours(24);
    if (e.spec().has_max_run_time() && e.spec().max_run_time().seconds() > 0) {
      ttl = std::chrono::seconds(e.spec().max_run_time().seconds()) + std::chrono::minutes(5);
    }
    if (backend->UpdatesSecretsOf(workload)) ttl = options_.identity_token_ttl;
    auto minted = options_.tokens->Mint(
        user, ProjectOf(e), absl::StrCat("workload ", e.name(), " attempt ", e.attempt()), ttl);
    if (!minted.ok()) {
      if (IsTransient(minted.status())) {
        SetPendingReason(s, absl::StrCat("waiting for the permission service to issue the "
                                         "workload's identity token: ",
                                         Message(minted.status())));
        return true;
      }
      (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
        return Transition(tx, now, v1::FAILED,
                          absl::StrCat("workload identity token: ", Message(minted.status())),
                          clock_.Now(), "", kSystem);
      });
      ReleaseLease(s);
      return true;
    }
    token = std::move(*minted);
    std::lock_guard lock(mu_);
    token_expiry_.erase(e.workload_token());
    token_expiry_[token->name] = clock_.Now() + ttl;
  }
  const std::vector<std::string> warnings =
      LaunchWarnings(e.reproducibility().resolved_spec(), backend->Kind(), &options_.python_envs);
  const bool warnings_changed =
      !std::equal(warnings.begin(), warnings.end(), e.warnings().begin(), e.warnings().end());
  // Record the workload id (and token) first, so that a crash between Submit and the transition
  // leaves a workload the record knows about (never an orphan that looks like someone else's).
  if (!s.workload_id || *s.workload_id != id || token || warnings_changed) {
    absl::Status st = Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
      now.workload_id = id;
      if (token) now.experiment.set_workload_token(token->name);
      now.experiment.mutable_warnings()->Assign(warnings.begin(), warnings.end());
      Touch(tx, now, clock_.Now(), "");
      return absl::OkStatus();
    });
    if (!st.ok()) {
      if (token) (void)options_.tokens->Revoke(token->name, user);
      return true;
    }
    s.workload_id = id;
  }
  // (Change replaced the stored message: references into the old one are gone.)
  const auto& resolved = e.reproducibility().resolved_spec();
  // A private repository's credential, read for the submitter at each launch (never stored
  // with the experiment): the workload carries it as a secret.
  const std::string& credential = resolved.code().git().credential();
  if (!credential.empty()) {
    const std::string name = absl::StartsWith(credential, "users/")
                                 ? credential
                                 : absl::StrCat("users/", user, "/credentials/", credential);
    absl::StatusOr<std::string> secret =
        options_.credentials == nullptr
            ? absl::FailedPreconditionError(
                  "no credential store: the service runs without the permission service")
            : options_.credentials->Access(name, user);
    if (!secret.ok()) {
      if (IsTransient(secret.status())) {
        SetPendingReason(s, absl::StrCat("waiting for the credential store to give git credential ",
                                         name, ": ", Message(secret.status())));
        return true;
      }
      (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
        return Transition(tx, now, v1::FAILED,
                          absl::StrCat("git credential ", name, ": ", Message(secret.status())),
                          clock_.Now(), "", kSystem);
      });
      ReleaseLease(s);
      return true;
    }
    workload.secret_env["SUBMARINE_GIT_TOKEN"] = *secret;
  }
  if (token) workload.secret_env["SUBMARINE_TOKEN"] = token->secret;
  absl::Status submitted = backend->Submit(workload);
  if (!submitted.ok() && submitted.code() != absl::StatusCode::kInvalidArgument) {
    log::Get("controller")->warn("launch of {} postponed: {}", e.name(), Message(submitted));
    return true;
  }
  (void)Change(s, [&](pqxx::work& tx, StoredExperiment& now) {
    if (!submitted.ok()) {
      return Transition(tx, now, v1::FAILED,
                        absl::StrCat("the compute cluster refused it: ", Message(submitted)),
                        clock_.Now(), "", kSystem);
    }
    return Transition(tx, now, v1::CREATED, absl::StrCat("submitted as workload ", id),
                      clock_.Now(), "", kSystem);
  });
  if (submitted.ok()) {
    if (local) room->local_tasks += replicas;
    room->held[ClusterOf(e)] += TotalResources(e.reproducibility().resolved_spec());
  }
  if (!submitted.ok()) ReleaseLease(s);
  return true;
}

void Controller::Observe(StoredExperiment& s, const compute::WorkloadStatus* status) {
  const v1::Experiment& e = s.experiment;
  auto now = clock_.Now();
  if (status == nullptr) {
    const StoredExperiment before = s;  // its lease, which a retry clears
    // The backend answered the list and does not hold this workload: it is gone for good.
    (void)Change(s, [&](pqxx::work& tx, StoredExperiment& row) {
      SUBMARINE_RETURN_IF_ERROR(
          Transition(tx, row, v1::FAILED,
                     absl::StrCat("its workload ", s.workload_id.value_or("?"),
                                  " no longer exists on the compute cluster"),
                     now, "", kSystem));
      return RetryIfAllowed(tx, row, now);
    });
    ReleaseLease(before);
    return;
  }
  std::vector<v1::Task> tasks;
  for (const auto& t : status->tasks) tasks.push_back(ToTask(t));
  v1::State to = StateOf(status->phase);
  if (status->phase == compute::Phase::kPending && e.state() == v1::CREATED &&
      !status->message.empty()) {
    // Submitted, and the cluster says why it waits (a Kueue queue, a suspended TrainJob).
    SetPendingReason(s, status->message);
  }
  // Usage alone is recorded at most every kUsageRecordPeriod: each record is a row write.
  const TasksDiffer differ = CompareTasks(e, tasks);
  bool tasks_changed = differ == TasksDiffer::kYes;
  if (differ == TasksDiffer::kOnlyUsage) {
    const auto updated = db::Timestamp::FromProto(e.update_time()).ToTimePoint();
    tasks_changed = now - updated >= kUsageRecordPeriod;
  }
  if (to <= e.state() && !tasks_changed) {
    // Max run time: measured from RUNNING.
    if (e.state() == v1::RUNNING && e.spec().has_max_run_time() && !s.stop_reason) {
      auto limit = std::chrono::seconds(e.spec().max_run_time().seconds()) +
                   std::chrono::nanoseconds(e.spec().max_run_time().nanos());
      auto started = db::Timestamp::FromProto(e.start_time()).ToTimePoint();
      if (limit.count() > 0 && now - started > limit) {
        (void)Change(s, [&](pqxx::work& tx, StoredExperiment& row) {
          row.stop_reason = "max run time exceeded";
          Touch(tx, row, now, "");
          return absl::OkStatus();
        });
        s.stop_reason = "max run time exceeded";
        RequestStop(s);
      }
    }
    return;
  }
  // Copied only now: a pass over thousands of unchanged experiments copies none.
  const StoredExperiment before = s;  // its lease, which a retry clears
  (void)Change(s, [&](pqxx::work& tx, StoredExperiment& row) -> absl::Status {
    row.experiment.clear_tasks();
    for (auto& t : tasks) *row.experiment.add_tasks() = t;
    if (to <= row.experiment.state()) {
      Touch(tx, row, now, "");
      return absl::OkStatus();
    }
    // A job that ran and ended between two passes still ran: record RUNNING first, at the time
    // its first task started, so every finished job that ran has a start time.
    if (IsFinal(to) && row.experiment.state() < v1::RUNNING) {
      std::optional<std::chrono::system_clock::time_point> first;
      for (const auto& t : status->tasks) {
        if (t.start_time && (!first || *t.start_time < *first)) first = t.start_time;
      }
      if (first) {
        SUBMARINE_RETURN_IF_ERROR(
            Transition(tx, row, v1::RUNNING, "a task started", *first, "", kSystem));
      }
    }
    std::string reason = status->message;
    if (to == v1::KILLED && row.stop_reason) reason = *row.stop_reason;
    if (reason.empty()) reason = to == v1::RUNNING ? "a task is running" : "all tasks succeeded";
    SUBMARINE_RETURN_IF_ERROR(Transition(tx, row, to, reason, now, "", kSystem));
    if (to == v1::KILLED && absl::StartsWith(reason, kPreemptedBy)) {
      // Preempted, not given up: it waits again, as a new attempt, in its place in the queue.
      return StartAttempt(tx, row, absl::StrCat("requeued after being ", reason), now, "", kSystem);
    }
    return to == v1::FAILED ? RetryIfAllowed(tx, row, now) : absl::OkStatus();
  });
  if (IsFinal(to)) ReleaseLease(before);
}

absl::Status Controller::RetryIfAllowed(pqxx::work& tx, StoredExperiment& row,
                                        std::chrono::system_clock::time_point now) {
  const int retries = row.experiment.spec().retry_policy().max_retries();
  // Retries the policy made (not requeues after preemption, nor retries asked for by users).
  int done = 0;
  for (const auto& h : row.experiment.history()) {
    done += h.state() == v1::PENDING && absl::StartsWith(h.reason(), kRetryReason);
  }
  if (done >= retries) return absl::OkStatus();
  return StartAttempt(tx, row,
                      absl::StrCat(kRetryReason, done + 1, " of ", retries,
                                   " after: ", row.experiment.state_reason()),
                      now, "", kSystem);
}

void Controller::RequestStop(StoredExperiment& s) {
  compute::Backend* backend = BackendOf(s);
  if (!s.workload_id || backend == nullptr) return;
  absl::Status st = backend->Stop(*s.workload_id, options_.stop_grace);
  if (!st.ok() && st.code() != absl::StatusCode::kNotFound) {
    log::Get("controller")->warn("stop of {} postponed: {}", s.experiment.name(), Message(st));
  }
}

void Controller::ReleaseLease(const StoredExperiment& s) {
  if (options_.tokens != nullptr && !s.experiment.workload_token().empty()) {
    {
      std::lock_guard lock(mu_);
      token_expiry_.erase(s.experiment.workload_token());
    }
    absl::Status st = options_.tokens->Revoke(s.experiment.workload_token(), UserOf(s.experiment));
    if (!st.ok()) {
      log::Get("controller")
          ->warn("identity token {} of {} not revoked ({}); it expires by itself",
                 s.experiment.workload_token(), s.experiment.name(), Message(st));
    }
  }
  if (!s.lease || quota_ == nullptr) return;
  absl::Status st = quota_->Release(*s.lease, UserOf(s.experiment));
  if (!st.ok()) {
    log::Get("controller")
        ->warn("lease {} of {} not released ({}); it lapses by itself", *s.lease,
               s.experiment.name(), Message(st));
  }
  std::lock_guard lock(mu_);
  heartbeats_.erase(*s.lease);
  released_.insert(*s.lease);
}

void Controller::RenewTokens(const std::vector<StoredExperiment*>& unfinished) {
  if (options_.tokens == nullptr) return;
  // A restarted controller knows no expiry: it renews every running token, a bounded number per
  // pass so that the permission service is not flooded.
  constexpr int kMaxRenewalsPerPass = 50;
  int renewed = 0;
  const auto now = clock_.Now();
  for (StoredExperiment* row : unfinished) {
    StoredExperiment& s = *row;
    const v1::Experiment& e = s.experiment;
    // (An attempt that ended in this pass has revoked its token already.)
    if (e.state() < v1::CREATED || IsFinal(e.state()) || e.workload_token().empty() ||
        !s.workload_id) {
      continue;
    }
    compute::Backend* backend = BackendOf(s);
    if (backend == nullptr || !backend->CanUpdateSecrets()) continue;
    const std::string old = e.workload_token();
    {
      std::lock_guard lock(mu_);
      auto known = token_expiry_.find(old);
      if (known != token_expiry_.end() && known->second - now > options_.identity_token_ttl / 2) {
        continue;
      }
    }
    if (renewed++ == kMaxRenewalsPerPass) break;
    const std::string user = UserOf(e);
    auto minted = options_.tokens->Mint(
        user, ProjectOf(e), absl::StrCat("workload ", e.name(), " attempt ", e.attempt()),
        options_.identity_token_ttl);
    if (!minted.ok()) {
      log::Get("controller")
          ->warn("identity token of {} not renewed: {}", e.name(), Message(minted.status()));
      continue;
    }
    absl::Status delivered =
        backend->UpdateSecrets(*s.workload_id, {{"SUBMARINE_TOKEN", minted->secret}});
    if (!delivered.ok()) {
      // Unreachable, or not there yet: the old token serves on; try again next pass. A
      // workload that can never take one (submitted before renewal existed) keeps its token,
      // minted for its whole run then.
      (void)options_.tokens->Revoke(minted->name, user);
      if (absl::IsFailedPrecondition(delivered) || absl::IsInvalidArgument(delivered) ||
          absl::IsUnimplemented(delivered)) {
        std::lock_guard lock(mu_);
        token_expiry_[old] = std::chrono::system_clock::time_point::max();
      }
      log::Get("controller")
          ->warn("identity token of {} not renewed: {}", e.name(), Message(delivered));
      continue;
    }
    absl::Status recorded = Change(s, [&](pqxx::work& tx, StoredExperiment& now_row) {
      now_row.experiment.set_workload_token(minted->name);
      Touch(tx, now_row, clock_.Now(), "");
      return absl::OkStatus();
    });
    if (!recorded.ok()) {
      // The tasks hold the new token, the record the old: the new one lapses by itself (the
      // next pass renews again), the old one is revoked when the attempt ends.
      log::Get("controller")
          ->warn("renewed identity token of {} not recorded: {}", e.name(), Message(recorded));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      token_expiry_.erase(old);
      token_expiry_[minted->name] = now + options_.identity_token_ttl;
    }
    absl::Status revoked = options_.tokens->Revoke(old, user);
    if (!revoked.ok()) {
      log::Get("controller")
          ->warn("replaced identity token {} of {} not revoked ({}); it expires by itself", old,
                 e.name(), Message(revoked));
    }
  }
}

void Controller::HeartbeatLeases(const std::vector<StoredExperiment*>& unfinished) {
  if (quota_ == nullptr) return;
  auto now = clock_.Now();
  auto every = std::chrono::seconds(std::max(1, options_.lease_ttl_seconds / 3));
  for (const StoredExperiment* row : unfinished) {
    const StoredExperiment& s = *row;
    if (!s.lease) continue;
    {
      std::lock_guard lock(mu_);
      if (released_.count(*s.lease)) continue;  // the experiment ended in this pass
      auto& last = heartbeats_[*s.lease];
      if (now - last < every) continue;
      last = now;
    }
    absl::Status st = quota_->Heartbeat(*s.lease, UserOf(s.experiment));
    if (!st.ok()) {
      log::Get("controller")
          ->warn("lease {} of {} not extended: {}", *s.lease, s.experiment.name(), Message(st));
    }
  }
}

void Controller::Heal(compute::Backend* backend,
                      const std::vector<compute::WorkloadStatus>& workloads,
                      const std::set<std::string>& alive) {
  // Ours carry the experiment's uid; one is kept while its experiment exists (every attempt's,
  // so earlier attempts' logs stay readable), and removed once the experiment is gone.
  std::vector<std::string> uids;
  for (const auto& w : workloads) {
    auto uid = w.labels.find(kUidLabel);
    if (uid != w.labels.end() && !alive.count(uid->second)) uids.push_back(uid->second);
  }
  if (uids.empty()) return;
  std::vector<std::string> known;
  absl::Status st = pool_->Read(db::kNoDeadline, [&](pqxx::transaction_base& tx) {
    known = ExperimentStore::KnownUids(tx, uids);
    return absl::OkStatus();
  });
  if (!st.ok()) return;
  std::set<std::string> keep(known.begin(), known.end());
  keep.insert(alive.begin(), alive.end());
  for (const auto& w : workloads) {
    auto uid = w.labels.find(kUidLabel);
    if (uid == w.labels.end() || keep.count(uid->second)) continue;
    log::Get("controller")->info("workload {} has no experiment any more: deleting it", w.id);
    absl::Status deleted = backend->Delete(w.id, /*keep_logs=*/false);
    if (!deleted.ok()) {
      log::Get("controller")->warn("cannot delete workload {}: {}", w.id, Message(deleted));
    }
  }
}

void Controller::Forget(const StoredExperiment& s) {
  if (compute::Backend* backend = BackendOf(s); s.workload_id && backend != nullptr) {
    absl::Status st = backend->Delete(*s.workload_id, /*keep_logs=*/false);
    if (!st.ok()) {
      log::Get("controller")
          ->warn(
              "workload {} of deleted {} not removed yet ({}); the "
              "controller removes it later",
              *s.workload_id, s.experiment.name(), Message(st));
    }
  }
  ReleaseLease(s);
}

}  // namespace submarine::experiment
