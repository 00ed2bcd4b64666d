#include "services/experiment/experiment_manager.h"

#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/field_mask.h"
#include "common/api/filter_compiler.h"
#include "common/api/labels.h"
#include "common/api/list_request.h"
#include "common/api/names.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/experiment/experiment_spec.h"
#include "services/experiment/experiment_store.h"
#include "services/experiment/transitions.h"

namespace submarine::experiment {
namespace {

using submarine::permission::v1::Permission;
using v1::Experiment;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr int64_t kDefaultLogBytes = 1 << 20;
constexpr int64_t kMaxLogBytes = 4 << 20;
// StreamLogs in follow mode: how often a quiet log is read again, how often cancellation is
// looked at meanwhile, and how often the experiment's row is read again.
constexpr auto kLogPollInterval = std::chrono::milliseconds(200);
constexpr auto kLogCancelCheck = std::chrono::milliseconds(50);
constexpr auto kLogResolveInterval = std::chrono::seconds(2);

absl::Status ValidateAttributes(const Experiment& e, const std::string& prefix) {
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(e.description(), prefix + "description", 4096, true));
  return api::ValidateLabels(e.labels(), prefix + "labels");
}

absl::Status EtagMismatch(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                   absl::StrCat("experiment \"", name,
                                "\" was changed concurrently: the etag does not match; read it "
                                "again and retry"),
                   {{"resource", name}});
}

// "worker-0" → {worker, 0}.
absl::StatusOr<compute::TaskRef> ParseTask(const std::string& task) {
  size_t dash = task.rfind('-');
  compute::TaskRef ref;
  if (dash == std::string::npos || dash == 0 ||
      !absl::SimpleAtoi(task.substr(dash + 1), &ref.index) || ref.index < 0) {
    return InvalidField("task", "is \"{role}-{index}\", e.g. \"worker-0\"");
  }
  ref.role = task.substr(0, dash);
  return ref;
}

// Invalid UTF-8 from a task's output is replaced, so the answer is always a valid string.
// `consumed` is how much of `in` was used: a sequence cut at the end is left for the next read.
std::string ValidUtf8(const std::string& in, size_t* consumed) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else if (len > 0 && i + len > in.size()) {
      break;  // a sequence cut by the page end: the next read starts at it
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  *consumed = i;
  return out;
}

}  // namespace

absl::Status ParseExperimentName(const std::string& name, const std::string& field,
                                 std::string* project, std::string* experiment_id) {
  return api::ParseProjectResourceName(name, field, "experiments", "experiment", project,
                                       experiment_id);
}

ExperimentManager::ExperimentManager(Deps deps) : d_(std::move(deps)) {}

absl::Status ExperimentManager::ResolveEnvironment(const rpc::CallInfo& call,
                                                   const std::string& parent,
                                                   v1::ExperimentSpec* resolved) {
  const std::string& credential = resolved->code().git().credential();
  if (!credential.empty() && d_.check_credential) {
    // Checked now, so that a typo is a 400 rather than a failed launch; read again at launch.
    const std::string name = absl::StartsWith(credential, "users/")
                                 ? credential
                                 : absl::StrCat("users/", call.user(), "/credentials/", credential);
    SUBMARINE_RETURN_IF_ERROR(
        d_.check_credential(call, name, "experiment.spec.code.git.credential"));
  }
  std::string env = resolved->environment().name();
  if (env.empty() || !d_.lookup_environment) return absl::OkStatus();
  if (env.find('/') == std::string::npos) {
    env = absl::StrCat(parent, "/environments/", env);
    resolved->mutable_environment()->set_name(env);
  }
  const std::string field = "experiment.spec.environment.name";
  SUBMARINE_ASSIGN_OR_RETURN(v1::EnvironmentRef profile, d_.lookup_environment(call, env, field));
  // The profile as it is now goes into the resolved spec (a later edit of the profile does not
  // change what this experiment runs with): its dependencies first, then the spec's own.
  using Deps = google::protobuf::RepeatedPtrField<std::string>;
  auto merge = [&](const Deps& theirs, const char* list, Deps* ours) -> absl::Status {
    absl::Status checked = CheckDependencies(theirs, absl::StrCat(env, ".", list));
    if (!checked.ok()) {
      return InvalidField(field, absl::StrCat("environment profile ", Message(checked)));
    }
    Deps merged = theirs;
    merged.MergeFrom(*ours);
    *ours = std::move(merged);
    return absl::OkStatus();
  };
  auto* mine = resolved->mutable_environment();
  SUBMARINE_RETURN_IF_ERROR(
      merge(profile.pip_dependencies(), "pip_dependencies", mine->mutable_pip_dependencies()));
  SUBMARINE_RETURN_IF_ERROR(merge(profile.conda_dependencies(), "conda_dependencies",
                                  mine->mutable_conda_dependencies()));
  if (resolved->environment().image().empty() && !profile.image().empty()) {
    resolved->mutable_environment()->set_image(profile.image());
    for (auto& [role_name, role] : *resolved->mutable_spec()) {
      if (role.image().empty()) role.set_image(profile.image());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ExperimentSpec> ExperimentManager::WithDefaultCluster(
    const v1::ExperimentSpec& spec, const std::string& parent, const rpc::CallInfo& call) const {
  if (!spec.compute_cluster().empty() || !d_.default_cluster) return spec;
  SUBMARINE_ASSIGN_OR_RETURN(std::string cluster, d_.default_cluster(call, parent));
  v1::ExperimentSpec out = spec;
  out.set_compute_cluster(cluster);
  return out;
}

std::vector<std::string> ExperimentManager::ClusterNames(const v1::ExperimentSpec& spec) const {
  if (d_.directory == nullptr) return d_.clusters->Names();
  return d_.directory->NamesFor(ClusterId(spec.compute_cluster()));
}

absl::Status ExperimentManager::CheckCluster(const std::string& project,
                                             const v1::ExperimentSpec& resolved) const {
  if (d_.directory == nullptr) return absl::OkStatus();
  return d_.directory->CheckUse(project, resolved.compute_cluster(), TotalResources(resolved),
                                "experiment.spec.compute_cluster");
}

absl::StatusOr<Experiment> ExperimentManager::Create(const v1::CreateExperimentRequest& req,
                                                     const rpc::CallInfo& call) {
  std::string project;
  SUBMARINE_RETURN_IF_ERROR(api::ParseProjectName(req.parent(), "parent", &project));
  if (!req.experiment_id().empty()) {
    SUBMARINE_RETURN_IF_ERROR(
        api::ValidateResourceId(req.experiment_id(), "experiment_id", "experiment"));
  }
  const Experiment& in = req.experiment();
  if (!in.name().empty() && !req.experiment_id().empty() &&
      in.name() != absl::StrCat(req.parent(), "/experiments/", req.experiment_id())) {
    return InvalidField("experiment.name",
                        "is output only on create (set parent and experiment_id instead)");
  }
  SUBMARINE_RETURN_IF_ERROR(ValidateAttributes(in, "experiment."));
  SUBMARINE_ASSIGN_OR_RETURN(v1::ExperimentSpec spec,
                             WithDefaultCluster(in.spec(), req.parent(), call));
  SUBMARINE_ASSIGN_OR_RETURN(v1::ExperimentSpec resolved,
                             ResolveSpec(spec, "experiment.spec.", ClusterNames(spec)));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, req.parent(), Permission::WRITE));
  SUBMARINE_RETURN_IF_ERROR(CheckCluster(project, resolved));
  SUBMARINE_RETURN_IF_ERROR(ResolveEnvironment(call, req.parent(), &resolved));
  auto created = d_.idempotency->Run<Experiment>(
      *d_.pool, call, "CreateExperiment", req, req.request_id(),
      [&](pqxx::work& tx, Experiment* answer) -> absl::Status {
        auto now = d_.clock->Now();
        std::string id = req.experiment_id();
        if (id.empty()) {
          auto millis =
              std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
          char buf[64];
          std::snprintf(buf, sizeof buf, "experiment-%lld-%04lld", static_cast<long long>(millis),
                        static_cast<long long>(ExperimentStore::NextIdCounter(tx)));
          id = buf;
        }
        std::string name = absl::StrCat(req.parent(), "/experiments/", id);
        if (ExperimentStore::Find(tx, project, id, false)) return AlreadyExists("experiment", name);
        Experiment& out = *answer;
        out.set_name(name);
        out.set_uid(d_.ids->Uuid());
        out.set_description(in.description());
        *out.mutable_labels() = in.labels();
        *out.mutable_spec() = in.spec();
        out.set_owner(call.subject.empty() ? "anonymous" : call.subject);
        out.set_attempt(1);
        *out.mutable_create_time() = ToProto(now);
        *out.mutable_update_time() = out.create_time();
        out.set_etag(d_.ids->RandomHex(8));
        auto* repro = out.mutable_reproducibility();
        *repro->mutable_resolved_spec() = resolved;
        repro->set_submitted_by(out.owner());
        repro->set_compute_cluster(absl::StrCat("computeClusters/", resolved.compute_cluster()));
        if (const compute::Backend* b = d_.clusters->Find(resolved.compute_cluster())) {
          repro->set_backend(b->Kind());
        }
        StoredExperiment stored;
        stored.project = project;
        stored.experiment_id = id;
        stored.experiment = out;
        try {
          stored.id = ExperimentStore::Insert(tx, project, id, out);
        } catch (const pqxx::unique_violation&) {
          return AlreadyExists("experiment", name);  // lost a race with a concurrent create
        }
        v1::ExperimentCreated event;
        *event.mutable_experiment() = out;
        SUBMARINE_RETURN_IF_ERROR(
            events::AppendToOutbox(tx, event, name, call.request_id, call.subject));
        SUBMARINE_RETURN_IF_ERROR(
            Transition(tx, stored, v1::PENDING, "submitted", now, call.request_id, call.subject));
        out = stored.experiment;
        return absl::OkStatus();
      });
  if (created.ok() && d_.wake) d_.wake();
  return created;
}

absl::StatusOr<Experiment> ExperimentManager::Get(const std::string& name,
                                                  const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(name, "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, name, Permission::READ));
  Experiment out;
  SUBMARINE_RETURN_IF_ERROR(d_.pool->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    auto found = ExperimentStore::Find(tx, project, id, false);
    if (!found) return NotFound("experiment", name);
    out = std::move(found->experiment);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListExperimentsResponse> ExperimentManager::List(
    const v1::ListExperimentsRequest& req, const rpc::CallInfo& call) {
  ListQuery q;
  SUBMARINE_RETURN_IF_ERROR(api::ParseProjectName(req.parent(), "parent", &q.project));
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  SUBMARINE_ASSIGN_OR_RETURN(
      q.filter, api::CompileFilter(req.filter(), ExperimentStore::FilterFields(q.project)));
  SUBMARINE_ASSIGN_OR_RETURN(auto order,
                             api::ParseOrderBy(req.order_by(), {"create_time"}, "create_time"));
  // Newest first unless asked otherwise ("create_time" alone means ascending).
  q.descending = req.order_by().empty() || order.descending;
  uint64_t hash = api::QueryHash({req.parent(), req.filter(), req.order_by()});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  if (!req.page_token().empty()) {
    q.after = {db::Timestamp::FromProto(token.after_time()).ToTimePoint(), token.after_id()};
  }
  const int page = q.limit;
  q.limit = page + 1;
  SUBMARINE_ASSIGN_OR_RETURN(
      auto visible,
      d_.authorizer->ListAccessible(call, req.parent(), "experiments", Permission::READ));
  if (!visible.all) {
    std::vector<std::string> ids;
    for (const auto& name : visible.names) {
      std::string p, id;
      if (ParseExperimentName(name, "name", &p, &id).ok() && p == q.project) {
        ids.push_back(std::move(id));
      }
    }
    q.only_ids = std::move(ids);
  }
  std::vector<StoredExperiment> rows;
  if (!q.only_ids || !q.only_ids->empty()) {
    SUBMARINE_RETURN_IF_ERROR(d_.pool->Read(call.deadline, [&](pqxx::transaction_base& tx) {
      rows = ExperimentStore::List(tx, q);
      return absl::OkStatus();
    }));
  }
  v1::ListExperimentsResponse resp;
  resp.set_next_page_token(api::TakePage(
      rows, page, hash, [&](const StoredExperiment& r) { *resp.add_experiments() = r.experiment; },
      [](const StoredExperiment& r, submarine::common::v1::PageToken* next) {
        *next->mutable_after_time() = r.experiment.create_time();
        next->set_after_id(r.id);
      }));
  return resp;
}

absl::StatusOr<Experiment> ExperimentManager::Update(const v1::UpdateExperimentRequest& req,
                                                     const rpc::CallInfo& call) {
  const std::string& name = req.experiment().name();
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(name, "experiment.name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, name, Permission::WRITE));
  std::vector<std::string> implicit;
  if (!req.experiment().description().empty()) implicit.push_back("description");
  if (req.experiment().labels_size() > 0) implicit.push_back("labels");
  static const std::set<std::string> kUpdatable = {"description", "labels"};
  SUBMARINE_ASSIGN_OR_RETURN(auto paths,
                             api::UpdatePaths(req.update_mask(), kUpdatable, std::move(implicit)));
  return d_.idempotency->Run<Experiment>(
      *d_.pool, call, "UpdateExperiment", req, req.request_id(),
      [&](pqxx::work& tx, Experiment* answer) -> absl::Status {
        auto found = ExperimentStore::Find(tx, project, id, /*for_update=*/true);
        if (!found) return NotFound("experiment", name);
        if (!req.experiment().etag().empty() &&
            req.experiment().etag() != found->experiment.etag()) {
          return EtagMismatch(name);
        }
        api::ApplyPaths(paths, req.experiment(), &found->experiment);
        SUBMARINE_RETURN_IF_ERROR(ValidateAttributes(found->experiment, "experiment."));
        Touch(tx, *found, d_.clock->Now(), d_.ids->RandomHex(8));
        *answer = found->experiment;
        v1::ExperimentUpdated event;
        *event.mutable_experiment() = *answer;
        return events::AppendToOutbox(tx, event, name, call.request_id, call.subject);
      });
}

absl::StatusOr<Experiment> ExperimentManager::Delete(const v1::DeleteExperimentRequest& req,
                                                     const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(req.name(), "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, req.name(), Permission::WRITE));
  StoredExperiment deleted;
  auto out = d_.idempotency->Run<Experiment>(
      *d_.pool, call, "DeleteExperiment", req, req.request_id(),
      [&](pqxx::work& tx, Experiment* answer) -> absl::Status {
        auto found = ExperimentStore::Find(tx, project, id, /*for_update=*/true);
        if (!found) return NotFound("experiment", req.name());
        if (!req.etag().empty() && req.etag() != found->experiment.etag()) {
          return EtagMismatch(req.name());
        }
        deleted = *found;
        *answer = found->experiment;
        ExperimentStore::Delete(tx, found->id);
        v1::ExperimentDeleted event;
        event.set_name(req.name());
        event.set_uid(answer->uid());
        return events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject);
      });
  // After the commit: the record is gone, so its workload (stopped at once) and logs go too.
  if (out.ok() && deleted.id != 0) d_.controller->Forget(deleted);
  return out;
}

absl::StatusOr<Experiment> ExperimentManager::Stop(const v1::StopExperimentRequest& req,
                                                   const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(req.name(), "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, req.name(), Permission::WRITE));
  StoredExperiment killed;
  auto out = d_.idempotency->Run<Experiment>(
      *d_.pool, call, "StopExperiment", req, req.request_id(),
      [&](pqxx::work& tx, Experiment* answer) -> absl::Status {
        auto found = ExperimentStore::Find(tx, project, id, /*for_update=*/true);
        if (!found) return NotFound("experiment", req.name());
        StoredExperiment& s = *found;
        v1::State state = s.experiment.state();
        if (!IsFinal(state) && !s.stop_reason) {
          std::string reason =
              absl::StrCat("stopped by ", call.subject.empty() ? "anonymous" : call.subject);
          s.stop_reason = reason;
          if (state < v1::CREATED) {
            // Not on a cluster yet: nothing to wait for.
            SUBMARINE_RETURN_IF_ERROR(Transition(tx, s, v1::KILLED, reason, d_.clock->Now(),
                                                 call.request_id, call.subject));
            killed = s;
          } else {
            Touch(tx, s, d_.clock->Now(), d_.ids->RandomHex(8));
          }
        }
        *answer = s.experiment;
        return absl::OkStatus();
      });
  if (out.ok()) {
    if (killed.id != 0) d_.controller->ReleaseLease(killed);
    if (d_.wake) d_.wake();
  }
  return out;
}

absl::StatusOr<Experiment> ExperimentManager::Retry(const v1::RetryExperimentRequest& req,
                                                    const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(req.name(), "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, req.name(), Permission::WRITE));
  auto out = d_.idempotency->Run<Experiment>(
      *d_.pool, call, "RetryExperiment", req, req.request_id(),
      [&](pqxx::work& tx, Experiment* answer) -> absl::Status {
        auto found = ExperimentStore::Find(tx, project, id, /*for_update=*/true);
        if (!found) return NotFound("experiment", req.name());
        SUBMARINE_RETURN_IF_ERROR(StartAttempt(
            tx, *found,
            absl::StrCat("retried by ", call.subject.empty() ? "anonymous" : call.subject),
            d_.clock->Now(), call.request_id, call.subject));
        *answer = found->experiment;
        return absl::OkStatus();
      });
  if (out.ok() && d_.wake) d_.wake();
  return out;
}

absl::StatusOr<Experiment> ExperimentManager::Clone(const v1::CloneExperimentRequest& req,
                                                    const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(req.name(), "name", &project, &id));
  SUBMARINE_ASSIGN_OR_RETURN(Experiment source, Get(req.name(), call));
  v1::CreateExperimentRequest create;
  create.set_parent(absl::StrCat("projects/", project));
  create.set_experiment_id(req.experiment_id());
  create.set_request_id(req.request_id());
  Experiment& e = *create.mutable_experiment();
  *e.mutable_spec() = source.spec();
  for (const auto& [k, v] : req.env_vars())
    (*e.mutable_spec()->mutable_meta()->mutable_env_vars())[k] = v;
  *e.mutable_labels() = req.labels().empty() ? source.labels() : req.labels();
  e.set_description(req.has_description() ? req.description() : source.description());
  if (req.has_priority()) e.mutable_spec()->set_priority(req.priority());
  return Create(create, call);
}

absl::StatusOr<Experiment> ExperimentManager::ReplaceSpec(const std::string& name,
                                                          const v1::ExperimentSpec& spec,
                                                          const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(name, "name", &project, &id));
  SUBMARINE_ASSIGN_OR_RETURN(v1::ExperimentSpec with_default,
                             WithDefaultCluster(spec, absl::StrCat("projects/", project), call));
  SUBMARINE_ASSIGN_OR_RETURN(
      v1::ExperimentSpec resolved,
      ResolveSpec(with_default, "experiment.spec.", ClusterNames(with_default)));
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, name, Permission::WRITE));
  SUBMARINE_RETURN_IF_ERROR(CheckCluster(project, resolved));
  SUBMARINE_RETURN_IF_ERROR(
      ResolveEnvironment(call, absl::StrCat("projects/", project), &resolved));
  Experiment out;
  SUBMARINE_RETURN_IF_ERROR(d_.pool->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    auto found = ExperimentStore::Find(tx, project, id, /*for_update=*/true);
    if (!found) return NotFound("experiment", name);
    if (found->experiment.state() != v1::PENDING) {
      return MakeError(
          absl::StatusCode::kFailedPrecondition, "EXPERIMENT_STARTED",
          absl::StrCat("experiment \"", name, "\" is ", v1::State_Name(found->experiment.state()),
                       ": only a PENDING experiment's spec can change"),
          {{"resource", name}});
    }
    *found->experiment.mutable_spec() = spec;
    *found->experiment.mutable_reproducibility()->mutable_resolved_spec() = resolved;
    Touch(tx, *found, d_.clock->Now(), d_.ids->RandomHex(8));
    out = found->experiment;
    v1::ExperimentUpdated event;
    *event.mutable_experiment() = out;
    return events::AppendToOutbox(tx, event, name, call.request_id, call.subject);
  }));
  return out;
}

absl::StatusOr<v1::ExperimentLogs> ExperimentManager::GetLogs(
    const v1::GetExperimentLogsRequest& req, const rpc::CallInfo& call) {
  if (req.offset() < 0) return InvalidField("offset", "must not be negative");
  if (req.max_bytes() < 0) return InvalidField("max_bytes", "must not be negative");
  SUBMARINE_ASSIGN_OR_RETURN(LogSource source, ResolveLogs(req.name(), req.task(), call));
  int64_t max = req.max_bytes() == 0 ? kDefaultLogBytes : std::min(req.max_bytes(), kMaxLogBytes);
  return ReadLogs(source, req.offset(), max);
}

absl::Status ExperimentManager::StreamLogs(const v1::StreamExperimentLogsRequest& req,
                                           const rpc::CallInfo& call, const LogSink& send,
                                           const std::function<bool()>& cancelled) {
  if (req.offset() < 0) return InvalidField("offset", "must not be negative");
  SUBMARINE_ASSIGN_OR_RETURN(LogSource source, ResolveLogs(req.name(), req.task(), call));
  int64_t offset = req.offset();
  bool first = true;
  auto resolved_at = std::chrono::steady_clock::now();
  for (;;) {
    SUBMARINE_ASSIGN_OR_RETURN(v1::ExperimentLogs logs, ReadLogs(source, offset, kDefaultLogBytes));
    const bool progressed = logs.next_offset() > offset;
    // An experiment that ended before its task ever ran has no log to wait for.
    if (source.final_state && source.backend == nullptr) logs.set_complete(true);
    const bool last =
        logs.complete() || (!req.follow() && (!progressed || logs.next_offset() >= logs.size()));
    if (progressed || last || first) {
      if (!send(logs)) return absl::CancelledError("the client went away");
      first = false;
    }
    if (last) return absl::OkStatus();
    offset = logs.next_offset();
    if (progressed) continue;  // more may be there already
    // Tailing: the task appends to a file (or a pod log) that announces nothing, so look again
    // shortly; cancellation (the client went away, its deadline passed) is seen at the same pace.
    for (auto waited = std::chrono::milliseconds(0); waited < kLogPollInterval;
         waited += kLogCancelCheck) {
      if (cancelled()) return absl::CancelledError("the client went away");
      std::this_thread::sleep_for(kLogCancelCheck);
    }
    // The experiment's row says whether the task has started (its workload), has ended in a
    // state that will not run it, or was retried; access is checked again at the same time.
    if (source.backend == nullptr ||
        std::chrono::steady_clock::now() - resolved_at >= kLogResolveInterval) {
      SUBMARINE_ASSIGN_OR_RETURN(LogSource again, ResolveLogs(req.name(), req.task(), call));
      if (source.workload_id && again.workload_id != source.workload_id) {
        offset = 0;  // a retry's new attempt: a new log
      }
      source = std::move(again);
      resolved_at = std::chrono::steady_clock::now();
    }
  }
}

absl::StatusOr<ExperimentManager::LogSource> ExperimentManager::ResolveLogs(
    const std::string& name, const std::string& task_name, const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseExperimentName(name, "name", &project, &id));
  std::optional<compute::TaskRef> asked;
  if (!task_name.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(asked, ParseTask(task_name));
  }
  SUBMARINE_RETURN_IF_ERROR(d_.authorizer->Check(call, name, Permission::READ));
  std::optional<StoredExperiment> found;
  SUBMARINE_RETURN_IF_ERROR(d_.pool->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    found = ExperimentStore::Find(tx, project, id, false);
    return found ? absl::OkStatus() : NotFound("experiment", name);
  }));
  LogSource source;
  source.final_state = IsFinal(found->experiment.state());
  v1::ExperimentLogs& out = source.logs;
  for (const auto& t : found->experiment.tasks()) {
    out.add_tasks(absl::StrCat(t.role(), "-", t.index()));
  }
  if (!asked && found->experiment.tasks_size() > 0) {
    asked = compute::TaskRef{found->experiment.tasks(0).role(), found->experiment.tasks(0).index()};
  }
  if (!asked) return source;  // nothing has run yet
  std::string task = absl::StrCat(asked->role, "-", asked->index);
  out.set_task(task);
  bool known = false;
  for (const auto& t : out.tasks()) known = known || t == task;
  // Before admission an experiment has no tasks yet: a named one may still come.
  const bool tasks_pending = out.tasks().empty() && !source.final_state;
  if (!known && !tasks_pending) {
    return MakeError(absl::StatusCode::kNotFound, "TASK_NOT_FOUND",
                     absl::StrCat("experiment \"", name, "\" has no task ", api::Quoted(task)),
                     {{"field", "task"}});
  }
  source.task = asked;
  if (!found->workload_id) return source;
  compute::Backend* backend = d_.clusters->Find(ClusterOf(found->experiment));
  if (backend == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "CLUSTER_NOT_CONFIGURED",
                     absl::StrCat("experiment \"", name, "\" ran on compute cluster ",
                                  api::Quoted(ClusterOf(found->experiment)),
                                  ", which this installation no longer has"),
                     {});
  }
  source.backend = backend;
  source.workload_id = found->workload_id;
  return source;
}

absl::StatusOr<v1::ExperimentLogs> ExperimentManager::ReadLogs(const LogSource& source,
                                                               int64_t offset, int64_t max) {
  v1::ExperimentLogs out = source.logs;
  out.set_next_offset(offset);
  if (source.backend == nullptr || !source.task) return out;
  auto chunk = source.backend->ReadLog(*source.workload_id, *source.task, offset, max);
  if (!chunk.ok()) {
    if (chunk.status().code() == absl::StatusCode::kNotFound) return out;  // not started
    return chunk.status();
  }
  size_t consumed = 0;
  std::string data = ValidUtf8(chunk->data, &consumed);
  // A sequence cut at the end of a finished log is garbage, not a page boundary.
  if (consumed < chunk->data.size() && chunk->complete &&
      offset + static_cast<int64_t>(chunk->data.size()) >= chunk->size) {
    data += "\xEF\xBF\xBD";
    consumed = chunk->data.size();
  }
  out.set_data(std::move(data));
  out.set_next_offset(offset + static_cast<int64_t>(consumed));
  out.set_size(chunk->size);
  out.set_complete(chunk->complete && out.next_offset() >= chunk->size);
  return out;
}

}  // namespace submarine::experiment
