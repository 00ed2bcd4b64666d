#include "common/compute/workload.h"

#include <algorithm>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::compute {
using nlohmann::json;

bool ValidName(const std::string& name, size_t max_length) {
  static const std::regex kName("[a-z0-9]([a-z0-9-]*[a-z0-9])?");
  return !name.empty() && name.size() <= max_length && std::regex_match(name, kName);
}

bool ValidId(const std::string& id) { return ValidName(id, 63); }

std::string TaskName(const TaskRef& task) { return absl::StrCat(task.role, "-", task.index); }

namespace {
absl::Status ValidateEnv(const std::map<std::string, std::string>& env, const std::string& field) {
  for (const auto& [key, value] : env) {
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
      return InvalidField(field, absl::StrCat("\"", QuoteInput(key), "\" is not a variable name"));
    }
    if (value.find('\0') != std::string::npos) {
      return InvalidField(absl::StrCat(field, ".", QuoteInput(key)), "must not contain NUL");
    }
  }
  return absl::OkStatus();
}

json ResourcesToJson(const Resources& r) {
  return {{"cpu_millis", r.cpu_millis}, {"memory_bytes", r.memory_bytes}, {"gpus", r.gpus}};
}

}  // namespace

std::vector<std::string> SecretKeys(const WorkloadSpec& spec) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : spec.secret_env) keys.push_back(key);
  return keys;
}

json SpecToJson(const WorkloadSpec& spec) {
  json roles = json::array();
  for (const RoleSpec& role : spec.roles) {
    roles.push_back({{"name", role.name},
                     {"replicas", role.replicas},
                     {"command", role.command},
                     {"env", role.env},
                     {"resources", ResourcesToJson(role.resources)},
                     {"image", role.image},
                     {"max_restarts", role.max_restarts}});
    // Service settings only where set, so that batch specs read as they always did.
    if (role.port != 0) roles.back()["port"] = role.port;
    if (role.readiness) {
      roles.back()["readiness"] = {{"http_path", role.readiness->http_path},
                                   {"period_ms", role.readiness->period.count()}};
    }
  }
  return {{"id", spec.id},
          {"kind", static_cast<int>(spec.kind)},
          {"framework", static_cast<int>(spec.framework)},
          {"roles", roles},
          {"env", spec.env},
          {"secret_keys", SecretKeys(spec)},
          {"labels", spec.labels},
          {"working_dir", spec.working_dir}};
}

absl::StatusOr<WorkloadSpec> SpecFromJson(const json& j) {
  try {
    WorkloadSpec spec;
    spec.id = j.at("id").get<std::string>();
    spec.kind = static_cast<WorkloadKind>(j.at("kind").get<int>());
    spec.framework = static_cast<Framework>(j.at("framework").get<int>());
    for (const json& r : j.at("roles")) {
      RoleSpec role;
      role.name = r.at("name").get<std::string>();
      role.replicas = r.at("replicas").get<int>();
      role.command = r.at("command").get<std::vector<std::string>>();
      role.env = r.at("env").get<std::map<std::string, std::string>>();
      role.resources.cpu_millis = r.at("resources").at("cpu_millis").get<int64_t>();
      role.resources.memory_bytes = r.at("resources").at("memory_bytes").get<int64_t>();
      role.resources.gpus = r.at("resources").at("gpus").get<int64_t>();
      role.image = r.at("image").get<std::string>();
      role.max_restarts = r.at("max_restarts").get<int>();
      role.port = r.value("port", 0);  // absent from specs stored before services existed
      if (r.contains("readiness")) {
        role.readiness = ReadinessProbe{
            r["readiness"].at("http_path").get<std::string>(),
            std::chrono::milliseconds(r["readiness"].at("period_ms").get<int64_t>())};
      }
      spec.roles.push_back(std::move(role));
    }
    spec.env = j.at("env").get<std::map<std::string, std::string>>();
    for (const json& key : j.value("secret_keys", json::array())) {
      spec.secret_env[key.get<std::string>()] = "";  // the values were never stored
    }
    spec.labels = j.at("labels").get<std::map<std::string, std::string>>();
    spec.working_dir = j.at("working_dir").get<std::string>();
    return spec;
  } catch (const std::exception& e) {
    return Unavailable(absl::StrCat("a stored workload spec is malformed: ", e.what()));
  }
}

std::vector<TaskRef> TasksOf(const WorkloadSpec& spec) {
  std::vector<TaskRef> tasks;
  for (const RoleSpec& role : spec.roles) {
    for (int i = 0; i < role.replicas; ++i) tasks.push_back({role.name, i});
  }
  return tasks;
}

std::vector<TaskRef> RankOrder(const WorkloadSpec& spec) {
  std::vector<TaskRef> tasks = TasksOf(spec);
  std::stable_partition(tasks.begin(), tasks.end(),
                        [](const TaskRef& t) { return t.role == "master"; });
  return tasks;
}

json NamedTfCluster(const WorkloadSpec& spec, const ReplicaHost& host) {
  json cluster = json::object();
  for (const TaskRef& t : TasksOf(spec)) {
    cluster[t.role].push_back(absl::StrCat(host(t), ":", kNamedTfPort));
  }
  return cluster;
}

std::map<std::string, std::string> NamedRendezvousEnv(const WorkloadSpec& spec,
                                                      const RoleSpec& role,
                                                      const ReplicaHost& host) {
  std::map<std::string, std::string> env;
  if (spec.framework != Framework::kPytorch && spec.framework != Framework::kXgboost) return env;
  const std::vector<TaskRef> ranked = RankOrder(spec);
  const auto first = std::find(ranked.begin(), ranked.end(), TaskRef{role.name, 0});
  env["SUBMARINE_RANK_OFFSET"] = absl::StrCat(first - ranked.begin());
  if (spec.framework == Framework::kPytorch) {
    env["MASTER_ADDR"] = host(ranked.front());
    env["MASTER_PORT"] = absl::StrCat(kNamedPytorchPort);
    env["WORLD_SIZE"] = absl::StrCat(ranked.size());
    env["LOCAL_RANK"] = "0";
    env["LOCAL_WORLD_SIZE"] = "1";
  } else {
    env["DMLC_TRACKER_URI"] = host(ranked.front());
    env["DMLC_TRACKER_PORT"] = absl::StrCat(kNamedXgboostTrackerPort);
    env["DMLC_NUM_WORKER"] = absl::StrCat(ranked.size());
    env["DMLC_ROLE"] = "worker";
  }
  return env;
}

absl::Status ValidateWorkloadSpec(const WorkloadSpec& spec) {
  if (!ValidId(spec.id)) {
    return InvalidField("spec.id", absl::StrCat("\"", QuoteInput(spec.id),
                                                "\" is not [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"));
  }
  if (spec.roles.empty()) return InvalidField("spec.roles", "at least one role is required");
  const bool service = spec.kind == WorkloadKind::kService;
  if (spec.kind != WorkloadKind::kBatch && !service) {
    return InvalidField("spec.kind", "must be batch or service");
  }
  if (service && spec.framework != Framework::kPlain) {
    return InvalidField("spec.framework",
                        "a service workload takes no distributed-training framework");
  }
  if (!spec.working_dir.empty() && spec.working_dir[0] != '/') {
    return InvalidField("spec.working_dir", "must be an absolute path");
  }
  SUBMARINE_RETURN_IF_ERROR(ValidateEnv(spec.env, "spec.env"));
  SUBMARINE_RETURN_IF_ERROR(ValidateEnv(spec.secret_env, "spec.secret_env"));
  std::set<std::string> names;
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    const RoleSpec& role = spec.roles[i];
    const std::string field = absl::StrCat("spec.roles[", i, "]");
    if (!ValidName(role.name, 40)) {
      return InvalidField(field + ".name",
                          absl::StrCat("\"", QuoteInput(role.name), "\" is not a lower-case name"));
    }
    if (!names.insert(role.name).second) {
      return InvalidField(field + ".name", absl::StrCat("role \"", role.name, "\" is repeated"));
    }
    // A service may start scaled to zero (serving with min 0 waits for its first request).
    if (role.replicas < (service ? 0 : 1) || role.replicas > kMaxReplicas) {
      return InvalidField(field + ".replicas",
                          absl::StrCat("must be ", service ? 0 : 1, " to ", kMaxReplicas));
    }
    if (role.port < 0 || role.port > 65535) {
      return InvalidField(field + ".port", "must be 0 to 65535");
    }
    if (role.readiness && !service) {
      return InvalidField(field + ".readiness", "only service workloads have readiness probes");
    }
    if (role.readiness) {
      const std::string& path = role.readiness->http_path;
      if (!path.empty() && (path[0] != '/' || path.find_first_of(" \r\n\t") != std::string::npos ||
                            path.find('\0') != std::string::npos)) {
        return InvalidField(field + ".readiness.http_path",
                            "must be an absolute URL path without spaces");
      }
      if (role.readiness->period < std::chrono::milliseconds(10) ||
          role.readiness->period > std::chrono::minutes(10)) {
        return InvalidField(field + ".readiness.period", "must be 10 ms to 10 minutes");
      }
    }
    if (role.command.empty() || role.command[0].empty()) {
      return InvalidField(field + ".command", "is required");
    }
    for (const std::string& arg : role.command) {
      if (arg.find('\0') != std::string::npos) {
        return InvalidField(field + ".command", "must not contain NUL");
      }
    }
    if (role.max_restarts < 0 || role.max_restarts > kMaxRestarts) {
      return InvalidField(field + ".max_restarts", absl::StrCat("must be 0 to ", kMaxRestarts));
    }
    const Resources& r = role.resources;
    if (r.cpu_millis < 0 || r.memory_bytes < 0 || r.gpus < 0) {
      return InvalidField(field + ".resources", "must not be negative");
    }
    SUBMARINE_RETURN_IF_ERROR(ValidateEnv(role.env, field + ".env"));
  }
  return absl::OkStatus();
}

}  // namespace submarine::compute
