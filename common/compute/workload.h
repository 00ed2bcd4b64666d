#pragma once
// What every compute backend shares about a WorkloadSpec: its validation, its tasks and rank
// order, and its JSON form (a backend stores the spec it was first given, so that Submit of an
// existing id keeps the first spec and a restarted service can read it back).

#include <functional>
#include <map>
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

// Rendezvous for replicas that find each other by host name (Kubernetes pods, YARN containers)
// on fixed ports, each replica having a network of its own: TensorFlow servers on kNamedTfPort
// of every replica, the PyTorch master on kNamedPytorchPort and the XGBoost tracker on
// kNamedXgboostTrackerPort of rank 0. `host` names a replica.
inline constexpr int kNamedTfPort = 2222;
inline constexpr int kNamedPytorchPort = 23456;
inline constexpr int kNamedXgboostTrackerPort = 9091;
using ReplicaHost = std::function<std::string(const TaskRef&)>;
// TF_CONFIG's "cluster": {role: ["host:port", ...]} for every role.
nlohmann::json NamedTfCluster(const WorkloadSpec& spec, const ReplicaHost& host);
// What every replica of `role` shares: PyTorch MASTER_ADDR, MASTER_PORT, WORLD_SIZE, LOCAL_RANK
// 0, LOCAL_WORLD_SIZE 1; XGBoost DMLC_TRACKER_URI, DMLC_TRACKER_PORT, DMLC_NUM_WORKER,
// DMLC_ROLE worker; both with SUBMARINE_RANK_OFFSET, the rank of the role's replica 0, to which
// each replica adds its index when it starts (RANK, DMLC_TASK_ID). Nothing for plain and
// TensorFlow workloads (TF_CONFIG's task is the replica's own).
std::map<std::string, std::string> NamedRendezvousEnv(const WorkloadSpec& spec,
                                                      const RoleSpec& role,
                                                      const ReplicaHost& host);

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
