#include "services/experiment/transitions.h"

#include "absl/strings/str_cat.h"
#include "common/db/statement.h"
#include "common/events/outbox.h"
#include "common/status/status.h"

namespace submarine::experiment {

bool IsFinal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::KILLED;
}

google::protobuf::Timestamp ToProto(std::chrono::system_clock::time_point t) {
  return db::Timestamp::FromTimePoint(t).ToProto();
}

namespace {

std::string NewEtag(const v1::Experiment& e, std::chrono::system_clock::time_point now) {
  // Changes with every save: the state, the history length and the time.
  return absl::StrCat(absl::Hex(db::Timestamp::FromTimePoint(now).micros), "-", e.history_size(),
                      "-", static_cast<int>(e.state()), "-", e.tasks_size());
}

}  // namespace

void Touch(pqxx::work& tx, StoredExperiment& s, std::chrono::system_clock::time_point now,
           const std::string& etag) {
  *s.experiment.mutable_update_time() = ToProto(now);
  s.experiment.set_etag(etag.empty() ? NewEtag(s.experiment, now) : etag);
  ExperimentStore::Save(tx, s);
}

namespace {

// Appends the history entry and writes the event of a move from `from` to the stored state.
absl::Status Record(pqxx::work& tx, StoredExperiment& s, v1::State from, const std::string& reason,
                    std::chrono::system_clock::time_point now, const std::string& request_id,
                    const std::string& actor) {
  v1::Experiment& e = s.experiment;
  e.set_state_reason(reason);
  auto* h = e.add_history();
  h->set_state(e.state());
  *h->mutable_time() = ToProto(now);
  h->set_reason(reason);
  h->set_attempt(e.attempt());
  Touch(tx, s, now, "");
  v1::ExperimentStateChanged event;
  event.set_name(e.name());
  event.set_uid(e.uid());
  event.set_from(from);
  event.set_to(e.state());
  event.set_reason(reason);
  event.set_attempt(e.attempt());
  *event.mutable_time() = h->time();
  return events::AppendToOutbox(tx, event, e.name(), request_id, actor);
}

}  // namespace

absl::Status StartAttempt(pqxx::work& tx, StoredExperiment& s, const std::string& reason,
                          std::chrono::system_clock::time_point now, const std::string& request_id,
                          const std::string& actor) {
  v1::Experiment& e = s.experiment;
  v1::State from = e.state();
  if (!IsFinal(from)) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "EXPERIMENT_NOT_FINISHED",
                     absl::StrCat("experiment \"", e.name(), "\" is ", v1::State_Name(from),
                                  ": only a finished experiment can run again"),
                     {{"resource", e.name()}});
  }
  e.set_attempt(e.attempt() + 1);
  e.set_state(v1::PENDING);
  e.clear_tasks();
  e.clear_start_time();
  e.clear_end_time();
  s.stop_reason.reset();
  s.lease.reset();
  s.workload_id.reset();
  return Record(tx, s, from, reason, now, request_id, actor);
}

absl::Status Transition(pqxx::work& tx, StoredExperiment& s, v1::State to,
                        const std::string& reason, std::chrono::system_clock::time_point now,
                        const std::string& request_id, const std::string& actor) {
  v1::Experiment& e = s.experiment;
  v1::State from = e.state();
  if (IsFinal(from) || to <= from) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ILLEGAL_TRANSITION",
                     absl::StrCat("experiment \"", e.name(), "\" is ", v1::State_Name(from),
                                  " and cannot become ", v1::State_Name(to)),
                     {{"resource", e.name()}});
  }
  e.set_state(to);
  if (to == v1::RUNNING) *e.mutable_start_time() = ToProto(now);
  if (IsFinal(to)) *e.mutable_end_time() = ToProto(now);
  return Record(tx, s, from, reason, now, request_id, actor);
}

}  // namespace submarine::experiment
