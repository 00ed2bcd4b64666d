#pragma once
// The one way an experiment changes state. A transition only moves forward
// (PENDING < ACCEPTED < CREATED < RUNNING < SUCCEEDED | FAILED | KILLED); it appends the history
// entry, sets the times (start_time on RUNNING, end_time on a final state), the reason, a new
// etag, saves the row and writes ExperimentStateChanged to the outbox — all in the caller's
// transaction, which must hold the row locked (ExperimentStore::Lock / Find for update).

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "services/experiment/experiment_store.h"
#include "submarine/experiment/v1/experiment.pb.h"

namespace submarine::experiment {

bool IsFinal(v1::State state);

// FAILED_PRECONDITION (nothing written) if `to` is not after the current state.
absl::Status Transition(pqxx::work& tx, StoredExperiment& stored, v1::State to,
                        const std::string& reason, std::chrono::system_clock::time_point now,
                        const std::string& request_id, const std::string& actor);

// Starts the next attempt of a finished experiment: attempt + 1, state PENDING with `reason`,
// tasks, times, stop request, lease and workload of the last attempt cleared (the history keeps
// it), ExperimentStateChanged written. FAILED_PRECONDITION (nothing written) unless finished.
absl::Status StartAttempt(pqxx::work& tx, StoredExperiment& stored, const std::string& reason,
                          std::chrono::system_clock::time_point now, const std::string& request_id,
                          const std::string& actor);

// Saves a change that is not a transition (tasks, reason, description...): new etag and
// update_time, no event.
void Touch(pqxx::work& tx, StoredExperiment& stored, std::chrono::system_clock::time_point now,
           const std::string& etag);

google::protobuf::Timestamp ToProto(std::chrono::system_clock::time_point t);

}  // namespace submarine::experiment
