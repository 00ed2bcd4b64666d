#pragma once
// What every compute backend shares about a WorkloadSpec: its validation, its tasks and rank
// order, and its JSON form (a backend stores the spec it was first given, so that Submit of an
// existing id keeps the first spec and a restarted service can read it back).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compute/compute.h"

namespace submarine::compute {

inline constexpr int kMaxReplicas = 256;
inline constexpr int kMaxRestarts = 100;

// [a-z0-9]([a-z0-9-]*[a-z0-9])? of at most `max_length` characters (a DNS-1123 label).
bool ValidName(const std::string& name, size_t max_length);
// A workload id: ValidName(id, 63).
bool ValidId(const std::string& id);

// "worker-1".
std::string TaskName(const TaskRef& task);
// Every task of the spec: roles in spec order, then indexes.
std::vector<TaskRef> TasksOf(const WorkloadSpec& spec);
// The order distributed ranks are counted in: a role named "master" first, then the roles in
// spec order.
std::vector<TaskRef> RankOrder(const WorkloadSpec& spec);

// The checks every backend makes (INVALID_ARGUMENT naming the field): the id, at least one role,
// unique lower-case role names, 1..kMaxReplicas replicas, a command, 0..kMaxRestarts restarts,
// resources not negative, variable names, no NUL anywhere, an absolute working_dir. The kinds and
// resources a backend can run are its own checks.
absl::Status ValidateWorkloadSpec(const WorkloadSpec& spec);

// The spec as JSON, secret_env reduced to its keys ("secret_keys"); SpecFromJson gives those
// keys back with empty values.
nlohmann::json SpecToJson(const WorkloadSpec& spec);
// The names of spec.secret_env.
std::vector<std::string> SecretKeys(const WorkloadSpec& spec);
// UNAVAILABLE (a stored spec that cannot be read is the store's fault, not the caller's).
absl::StatusOr<WorkloadSpec> SpecFromJson(const nlohmann::json& spec);

}  // namespace submarine::compute
