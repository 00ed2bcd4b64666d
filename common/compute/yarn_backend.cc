#include "common/compute/yarn_backend.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/compute/task_files.h"
#include "common/compute/workload.h"
#include "common/status/status.h"

namespace submarine::compute {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kMiB = 1 << 20;
constexpr char kLabelsProperty[] = "submarine.labels";
constexpr char kWorkloadProperty[] = "submarine.workload";
// The file of a service container's log directory that lists the instance's containers.
constexpr char kAttemptsFile[] = "submarine-attempts";
// The AM's readiness checks run every this many seconds, service-wide (30 by default).
constexpr char kReadinessIntervalProperty[] = "yarn.service.readiness-check-interval.seconds";
// A component fails its service after this many container failures in the failure window
// (10 in 6 hours by default): a serving replica is restarted whatever happens, as elsewhere.
constexpr char kFailureThresholdProperty[] =
    "yarn.service.container-failure-per-component.threshold";

std::string QuoteShellWord(const std::string& word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

// The shell prelude each container runs before argv (see the header).
std::string YarnPrelude(const WorkloadSpec& spec, const RoleSpec& role) {
  std::string s = "exec 2>&1\n";
  if (!spec.working_dir.empty())
    s += absl::StrCat("cd ", QuoteShellWord(spec.working_dir), " || exit 1\n");
  if (spec.kind == WorkloadKind::kService) {
    // The instance's containers on this node, one line each, in the application's local
    // directory (shared by its containers on the node): this container's line number is its
    // attempt. The list is copied into the container's log directory, where the NodeManager
    // serves it to the backend (kAttemptsFile).
    absl::StrAppend(
        &s, "h=\"${LOCAL_DIRS%%,*}/submarine-attempts\"\n", "l=\"${LOG_DIRS%%,*}\"\n",
        "mkdir -p \"$h\" || exit 1\n",
        "echo \"$CONTAINER_ID\" >> \"$h/$SUBMARINE_TASK_ROLE-$SUBMARINE_TASK_INDEX\" || exit 1\n",
        "cp \"$h/$SUBMARINE_TASK_ROLE-$SUBMARINE_TASK_INDEX\" \"$l/.", kAttemptsFile,
        "\" && mv \"$l/.", kAttemptsFile, "\" \"$l/", kAttemptsFile, "\" || exit 1\n",
        "export SUBMARINE_TASK_ATTEMPT=$(( $(wc -l < \"$l/", kAttemptsFile, "\") ))\n",
        // Containers of one node share its network: the replica serves on the node's address.
        "export SUBMARINE_HOST=\"$NM_HOST\"\n");
    return s + "exec \"$@\"\n";
  }
  if (spec.framework == Framework::kPytorch) {
    s += "export RANK=$(( SUBMARINE_RANK_OFFSET + SUBMARINE_TASK_INDEX ))\n";
  } else if (spec.framework == Framework::kXgboost) {
    s += "export DMLC_TASK_ID=$(( SUBMARINE_RANK_OFFSET + SUBMARINE_TASK_INDEX ))\n";
  }
  if (role.max_restarts == 0) return s + "exec \"$@\"\n";
  // Re-run a failed argv up to max_restarts times; SIGTERM (a stop) ends the retrying. The
  // background child is in the container's process group, so it gets the stop's signals itself.
  absl::StrAppend(&s, "stopping=\n", "trap 'stopping=1' TERM\n", "attempt=1\n", "while :; do\n",
                  "  export SUBMARINE_TASK_ATTEMPT=$attempt\n", "  \"$@\" &\n", "  child=$!\n",
                  "  while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null || break; done\n",
                  "  if [ $rc -eq 0 ] || [ -n \"$stopping\" ] || [ $attempt -gt ",
                  role.max_restarts, " ]; then exit $rc; fi\n", "  attempt=$(( attempt + 1 ))\n",
                  "done\n");
  return s;
}

std::string InstanceHost(const WorkloadSpec& spec, const TaskRef& t,
                         const YarnBackend::Options& options) {
  return absl::StrCat(t.role, "-", t.index, ".", spec.id, ".", options.user, ".",
                      options.registry_domain);
}

absl::Status ValidateForYarn(const WorkloadSpec& spec) {
  SUBMARINE_RETURN_IF_ERROR(ValidateWorkloadSpec(spec));
  if (!absl::ascii_isalpha(spec.id[0])) {
    return InvalidField("spec.id", "must start with a letter on YARN (a service name)");
  }
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    if (!absl::ascii_isalpha(spec.roles[i].name[0])) {
      return InvalidField(absl::StrCat("spec.roles[", i, "].name"),
                          "must start with a letter on YARN (a component name)");
    }
  }
  return absl::OkStatus();
}

absl::Status WriteStateFile(const std::string& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    return Unavailable(absl::StrCat("cannot create the directory of ", path, ": ", ec.message()));
  return local::WriteFileAtomically(path, data);
}

std::optional<json> ReadJsonFile(const std::string& path) {
  auto text = local::ReadSmallFile(path);
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

int64_t TimeMicros(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return 0;
  return std::chrono::duration_cast<std::chrono::microseconds>(t->time_since_epoch()).count();
}

std::optional<std::chrono::system_clock::time_point> FromMicros(int64_t us) {
  if (us <= 0) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

json YarnTaskJson(const TaskStatus& t) {
  return {{"role", t.task.role},
          {"index", t.task.index},
          {"attempt", t.attempt},
          {"phase", PhaseName(t.phase)},
          {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)},
          {"host", t.host},
          {"start_us", TimeMicros(t.start_time)},
          {"finish_us", TimeMicros(t.finish_time)},
          {"message", t.message}};
}

Phase RecordedPhase(const std::string& name) {
  for (Phase p :
       {Phase::kPending, Phase::kRunning, Phase::kSucceeded, Phase::kFailed, Phase::kKilled}) {
    if (name == PhaseName(p)) return p;
  }
  return Phase::kFailed;
}

TaskStatus YarnTaskFromJson(const json& j) {
  TaskStatus t;
  t.task = {j.value("role", ""), j.value("index", 0)};
  t.attempt = j.value("attempt", 1);
  t.phase = RecordedPhase(j.value("phase", ""));
  if (j.contains("exit_code") && j["exit_code"].is_number()) t.exit_code = j["exit_code"];
  t.host = j.value("host", "");
  t.start_time = FromMicros(j.value("start_us", int64_t{0}));
  t.finish_time = FromMicros(j.value("finish_us", int64_t{0}));
  t.message = j.value("message", "");
  return t;
}

// A task's final status is recorded once, in <dir>/tasks/<name>.json; later observations report
// it as recorded.
std::string TaskFile(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/tasks/", name, ".json");
}
std::optional<TaskStatus> RecordedTask(const std::string& dir, const std::string& name) {
  auto recorded = ReadJsonFile(TaskFile(dir, name));
  if (!recorded) return std::nullopt;
  return YarnTaskFromJson(*recorded);
}
absl::Status RecordTask(const std::string& dir, const std::string& name, const TaskStatus& t) {
  return WriteStateFile(TaskFile(dir, name), YarnTaskJson(t).dump());
}

json StatusJson(const WorkloadStatus& s) {
  json tasks = json::array();
  for (const TaskStatus& t : s.tasks) tasks.push_back(YarnTaskJson(t));
  return {{"phase", PhaseName(s.phase)}, {"message", s.message}, {"tasks", tasks}};
}

// What a YARN answer means: the diagnostics (RM) or RemoteException message (NM) of an error.
absl::Status YarnAnswerStatus(const net::HttpAnswer& answer, const std::string& what) {
  if (answer.status >= 200 && answer.status < 300) return absl::OkStatus();
  json body = json::parse(answer.body, nullptr, false);
  std::string message;
  if (body.is_object()) {
    message = body.value("diagnostics", "");
    if (message.empty() && body.contains("RemoteException") &&
        body["RemoteException"].is_object()) {
      message = body["RemoteException"].value("message", "");
    }
  }
  if (message.empty()) message = QuoteInput(answer.body, 200);
  message = absl::StrCat(what, ": HTTP ", answer.status, ": ", message);
  switch (answer.status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// The port a service role's replicas serve (the same on every replica: each has a node).
int ServicePort(const RoleSpec& role, const YarnBackend::Options& options) {
  return role.port != 0 ? role.port : options.service_port;
}

bool ServiceFinal(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "STOPPED";
}

// A container of a service instance, as recorded under logs_dir (tasks/<name>.containers.json).
struct RecordedContainer {
  std::string id;
  std::string host;  // its node's bare_host
  int attempt = 0;
};

std::vector<RecordedContainer> ReadRecords(const std::string& file) {
  std::vector<RecordedContainer> out;
  auto j = ReadJsonFile(file);
  if (!j || !j->is_object()) return out;
  for (const json& c : j->value("containers", json::array())) {
    if (!c.is_object()) continue;
    out.push_back({c.value("id", ""), c.value("host", ""), c.value("attempt", 0)});
  }
  std::sort(out.begin(), out.end(), [](const RecordedContainer& a, const RecordedContainer& b) {
    return a.attempt < b.attempt;
  });
  return out;
}

json RecordsJson(const std::vector<RecordedContainer>& records) {
  json list = json::array();
  for (const RecordedContainer& r : records) {
    list.push_back({{"id", r.id}, {"host", r.host}, {"attempt", r.attempt}});
  }
  return {{"containers", list}};
}

// Our words for a readiness failure the AM logged, e.g. from "Probe http://10.1.2.3:8080/ready
// error code: 404" (HttpProbe) "GET /ready: HTTP 404".
std::string DescribeProbeFailure(const std::string& detail) {
  static const std::regex kCode("Probe http://[^/ ]*(/\\S*)? error code: (\\d+)");
  static const std::regex kFailed("Probe http://[^/ ]*(/\\S*)? failed for IP \\S+: (.*)$");
  std::smatch m;
  if (std::regex_search(detail, m, kCode)) {
    return absl::StrCat("GET ", m[1].matched ? m[1].str() : "/", ": HTTP ", m[2].str());
  }
  if (std::regex_search(detail, m, kFailed)) {
    return absl::StrCat("GET ", m[1].matched ? m[1].str() : "/", ": ", QuoteInput(m[2].str(), 200));
  }
  return QuoteInput(detail, 200);
}

}  // namespace

// ---- The request ----

absl::StatusOr<json> YarnBackend::ServiceRequest(const WorkloadSpec& spec, const Options& options) {
  SUBMARINE_RETURN_IF_ERROR(ValidateForYarn(spec));
  const ReplicaHost host = [&](const TaskRef& t) { return InstanceHost(spec, t, options); };
  const json cluster = NamedTfCluster(spec, host);
  const bool serving = spec.kind == WorkloadKind::kService;
  json labels = json::object();
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  json service = {
      {"name", spec.id},
      {"version", "1"},
      {"configuration",
       {{"properties", {{kWorkloadProperty, spec.id}, {kLabelsProperty, labels.dump()}}}}},
      {"components", json::array()}};
  if (!options.queue.empty()) service["queue"] = options.queue;
  if (serving) {
    // One interval for the whole service: the shortest period asked for, in whole seconds.
    int64_t interval_ms = 0;
    for (const RoleSpec& role : spec.roles) {
      if (!role.readiness) continue;
      const int64_t ms = role.readiness->period.count();
      interval_ms = interval_ms == 0 ? ms : std::min(interval_ms, ms);
    }
    if (interval_ms > 0) {
      service["configuration"]["properties"][kReadinessIntervalProperty] =
          absl::StrCat(std::max<int64_t>(1, (interval_ms + 999) / 1000));
    }
  }
  for (const RoleSpec& role : spec.roles) {
    // secret_env, then env, then the role's env (each wins over the one before).
    std::map<std::string, std::string> env = spec.secret_env;
    for (const auto& [k, v] : spec.env) env[k] = v;
    for (const auto& [k, v] : role.env) env[k] = v;
    env["SUBMARINE_WORKLOAD_ID"] = spec.id;
    env["SUBMARINE_TASK_ROLE"] = role.name;
    env["SUBMARINE_TASK_INDEX"] = "${COMPONENT_ID}";  // substituted by the service AM
    env["SUBMARINE_TASK_ATTEMPT"] = "1";              // a service's prelude counts its own
    if (serving) env["SUBMARINE_PORT"] = absl::StrCat(ServicePort(role, options));
    for (const auto& [k, v] : NamedRendezvousEnv(spec, role, host)) env[k] = v;
    if (spec.framework == Framework::kTensorflow) {
      env["TF_CONFIG"] = absl::StrCat("{\"cluster\":", cluster.dump(), ",\"task\":{\"type\":\"",
                                      role.name, "\",\"index\":${COMPONENT_ID}}}");
    }
    std::string command =
        absl::StrCat("/bin/sh -c ", QuoteShellWord(YarnPrelude(spec, role)), " submarine-task");
    for (const std::string& arg : role.command) absl::StrAppend(&command, " ", QuoteShellWord(arg));
    json resource = {{"cpus", std::max<int64_t>(1, (role.resources.cpu_millis + 999) / 1000)},
                     {"memory", absl::StrCat(role.resources.memory_bytes > 0
                                                 ? (role.resources.memory_bytes + kMiB - 1) / kMiB
                                                 : options.default_memory_mb)}};
    if (role.resources.gpus > 0) {
      resource["additional"] = {{"yarn.io/gpu", {{"value", role.resources.gpus}, {"unit", ""}}}};
    }
    json component = {{"name", role.name},
                      {"number_of_containers", role.replicas},
                      {"restart_policy", serving ? "ALWAYS" : "NEVER"},
                      {"launch_command", command},
                      {"resource", resource},
                      {"configuration", {{"env", env}}}};
    if (serving) {
      const int port = ServicePort(role, options);
      component["configuration"]["properties"] = {{kFailureThresholdProperty, "2147483647"}};
      // Replicas of a role serve one port, so no two of them share a node.
      const json constraint = {
          {"type", "ANTI_AFFINITY"}, {"scope", "NODE"}, {"target_tags", json::array({role.name})}};
      component["placement_policy"] = {{"constraints", json::array({constraint})}};
      if (role.readiness && !role.readiness->http_path.empty()) {
        // Our probes take 2xx and 3xx; YARN's default range is 200-299.
        component["readiness_check"] = {
            {"type", "HTTP"},
            {"properties",
             {{"url", absl::StrCat("http://${THIS_HOST}:", port, role.readiness->http_path)},
              {"min.success", "200"},
              {"max.success", "399"}}}};
      } else if (role.readiness) {
        component["readiness_check"] = {{"type", "PORT"},
                                        {"properties", {{"port", absl::StrCat(port)}}}};
      }
    }
    const std::string image = role.image.empty() ? options.default_image : role.image;
    if (!image.empty()) component["artifact"] = {{"id", image}, {"type", "DOCKER"}};
    service["components"].push_back(component);
  }
  return service;
}

// ---- Construction ----

YarnBackend::YarnBackend(Options options) : options_(std::move(options)), http_(options_.timeout) {}

absl::StatusOr<std::unique_ptr<YarnBackend>> YarnBackend::Create(Options options) {
  if (options.rm_url.rfind("http://", 0) != 0 && options.rm_url.rfind("https://", 0) != 0) {
    return InvalidField("rm_url",
                        absl::StrCat("\"", QuoteInput(options.rm_url), "\" is not an http(s) URL"));
  }
  while (options.rm_url.back() == '/') options.rm_url.pop_back();
  if (options.user.empty()) return InvalidField("user", "is required");
  if (options.logs_dir.empty()) return InvalidField("logs_dir", "is required");
  if (options.registry_domain.empty()) return InvalidField("registry_domain", "is required");
  if (options.service_port <= 0 || options.service_port > 65535) {
    return InvalidField("service_port", "must be 1 to 65535");
  }
  std::error_code ec;
  fs::create_directories(options.logs_dir, ec);
  if (ec) {
    return Unavailable(
        absl::StrCat("cannot create logs_dir ", options.logs_dir, ": ", ec.message()));
  }
  return std::unique_ptr<YarnBackend>(new YarnBackend(std::move(options)));
}

std::mutex& YarnBackend::WorkloadMutex(const std::string& id) {
  return workload_mu_[std::hash<std::string>{}(id) % workload_mu_.size()];
}

std::string YarnBackend::Dir(const std::string& id) const {
  return absl::StrCat(options_.logs_dir, "/", id);
}

std::string YarnBackend::ServiceUrl(const std::string& id) const {
  return absl::StrCat(options_.rm_url, "/app/v1/services", id.empty() ? "" : "/", id,
                      "?user.name=", options_.user);
}

absl::Status YarnBackend::StopService(const std::string& id) {
  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer,
                             http_.Send("PUT", ServiceUrl(id), json{{"state", "STOPPED"}}.dump()));
  absl::Status s = YarnAnswerStatus(answer, absl::StrCat("PUT service ", id));
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<std::string> YarnBackend::FetchLog(const std::string& host,
                                                  const std::string& container) {
  const std::string url =
      absl::StrCat(absl::StrReplaceAll(options_.nodemanager_url, {{"{host}", host}}),
                   "/ws/v1/node/containerlogs/", container, "/stdout?user.name=", options_.user);
  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", url));
  absl::Status s = YarnAnswerStatus(answer, absl::StrCat("GET log of ", container));
  if (absl::IsNotFound(s)) return s;                        // the NodeManager no longer keeps it
  if (!s.ok()) return absl::UnavailableError(s.message());  // the NodeManager's fault, not ours
  return std::move(answer.body);
}

// ---- Submit ----

absl::Status YarnBackend::Submit(const WorkloadSpec& spec) {
  SUBMARINE_RETURN_IF_ERROR(ValidateForYarn(spec));
  std::lock_guard lock(WorkloadMutex(spec.id));
  const std::string dir = Dir(spec.id);
  WorkloadSpec first = spec;
  if (local::FileExists(dir + "/deleted")) {
    // A new workload under a deleted id whose logs were kept: its state starts afresh.
    for (const char* name : {"submitted", "stop.json", "verdict.json", "final.json", "deleted"}) {
      std::error_code ec;
      fs::remove(absl::StrCat(dir, "/", name), ec);
    }
    std::error_code ec;
    fs::remove_all(dir + "/tasks", ec);
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/workload.json", SpecToJson(spec).dump()));
  } else if (auto stored = ReadJsonFile(dir + "/workload.json")) {
    if (local::FileExists(dir + "/submitted")) return absl::OkStatus();  // the first spec wins
    SUBMARINE_ASSIGN_OR_RETURN(first, SpecFromJson(*stored));
    // The stored spec names its secrets only; their values come with this call.
    for (auto& [key, value] : first.secret_env) {
      auto it = spec.secret_env.find(key);
      if (it != spec.secret_env.end()) value = it->second;
    }
  } else {
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/workload.json", SpecToJson(spec).dump()));
  }
  SUBMARINE_ASSIGN_OR_RETURN(json body, ServiceRequest(first, options_));
  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer,
                             http_.Send("POST", ServiceUrl(""), body.dump()));
  absl::Status created = YarnAnswerStatus(answer, absl::StrCat("POST service ", spec.id));
  if (absl::IsInvalidArgument(created)) {
    // The RM answers 400 for a name already taken as for a bad spec: which one is it?
    SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer got, http_.Send("GET", ServiceUrl(spec.id)));
    absl::Status exists = YarnAnswerStatus(got, absl::StrCat("GET service ", spec.id));
    if (exists.ok()) {
      created = absl::OkStatus();
    } else if (absl::IsNotFound(exists)) {
      std::error_code ec;
      fs::remove_all(dir, ec);  // a spec the RM refuses leaves nothing behind
      return created;
    } else {
      return exists;
    }
  }
  if (!created.ok()) return absl::UnavailableError(created.message());
  return WriteStateFile(dir + "/submitted", absl::StrCat(local::NowMicros()));
}

// ---- Observation ----

struct YarnBackend::Observation {
  WorkloadKind kind = WorkloadKind::kBatch;
  WorkloadStatus status;
  bool service_final = true;
  // Running tasks' containers: (task name → container id).
  std::map<std::string, std::string> running;
};

absl::StatusOr<YarnBackend::Observation> YarnBackend::Observe(const std::string& id) {
  Observation out;
  if (!ValidId(id)) return absl::NotFoundError(absl::StrCat("no workload ", QuoteInput(id)));
  const std::string dir = Dir(id);
  auto stored = ReadJsonFile(dir + "/workload.json");
  if (!stored || local::FileExists(dir + "/deleted")) {
    return absl::NotFoundError(absl::StrCat("no workload ", id));
  }
  if (!local::FileExists(dir + "/submitted")) {
    // Submit may have died between the RM's answer and the marker: the RM knows.
    SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", ServiceUrl(id)));
    absl::Status got = YarnAnswerStatus(answer, absl::StrCat("GET service ", id));
    if (absl::IsNotFound(got)) return absl::NotFoundError(absl::StrCat("no workload ", id));
    if (!got.ok()) return absl::UnavailableError(got.message());
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/submitted", absl::StrCat(local::NowMicros())));
  }
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(*stored));
  out.kind = spec.kind;
  WorkloadStatus& status = out.status;
  status.id = id;
  status.labels = spec.labels;
  if (auto final_status = ReadJsonFile(dir + "/final.json")) {
    status.phase = RecordedPhase(final_status->value("phase", ""));
    status.message = final_status->value("message", "");
    for (const json& t : final_status->value("tasks", json::array())) {
      status.tasks.push_back(YarnTaskFromJson(t));
    }
    return out;
  }

  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", ServiceUrl(id)));
  absl::Status got = YarnAnswerStatus(answer, absl::StrCat("GET service ", id));
  json service = json::object();
  std::string service_state;
  if (absl::IsNotFound(got)) {
    service_state = "DESTROYED";  // destroyed behind the backend's back
  } else if (!got.ok()) {
    return absl::UnavailableError(got.message());
  } else {
    service = json::parse(answer.body, nullptr, false);
    if (!service.is_object()) return Unavailable(absl::StrCat("GET service ", id, ": not JSON"));
    service_state = service.value("state", "");
  }
  out.service_final = service_state == "DESTROYED" || ServiceFinal(service_state);
  std::map<std::string, json> containers;  // by component instance name
  for (const json& c : service.value("components", json::array())) {
    for (const json& k : c.value("containers", json::array())) {
      containers[k.value("component_instance_name", "")] = k;
    }
  }
  if (spec.kind == WorkloadKind::kService) {
    SUBMARINE_RETURN_IF_ERROR(ObserveService(id, spec, service, service_state, containers, out));
    return out;
  }
  const auto stop = ReadJsonFile(dir + "/stop.json");
  auto verdict = ReadJsonFile(dir + "/verdict.json");
  const auto now = std::chrono::system_clock::now();

  for (const TaskRef& ref : TasksOf(spec)) {
    const std::string name = TaskName(ref);
    if (auto recorded = RecordedTask(dir, name)) {
      status.tasks.push_back(*recorded);
      continue;
    }
    TaskStatus t;
    t.task = ref;
    auto it = containers.find(name);
    if (it == containers.end()) {
      if (!out.service_final) {
        status.tasks.push_back(t);
        continue;
      }
      // Ended without having been seen: the service's outcome is all there is.
      if (service_state == "SUCCEEDED") {
        t.phase = Phase::kSucceeded;
        t.exit_code = 0;
        t.message = "the service succeeded (the instance ended unobserved)";
      } else if (service_state == "STOPPED" || stop) {
        t.phase = Phase::kKilled;
        t.message = "stopped on request";
      } else {
        t.phase = Phase::kFailed;
        t.message = service_state == "DESTROYED"
                        ? "the YARN service was destroyed outside Submarine"
                        : "not accounted for: the service ended before the instance was seen";
      }
      t.finish_time = now;
      SUBMARINE_RETURN_IF_ERROR(RecordTask(dir, name, t));
      status.tasks.push_back(t);
      continue;
    }
    const json& c = it->second;
    const std::string state = c.value("state", "");
    const std::string container_id = c.value("id", "");
    t.host = c.value("bare_host", c.value("hostname", ""));
    if (c.contains("launch_time") && c["launch_time"].is_number()) {
      t.start_time = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(c["launch_time"].get<int64_t>()));
    }
    // A finished service runs nothing: its ApplicationMaster is gone and with it every container.
    if (state == "SUCCEEDED" || state == "FAILED" || state == "STOPPED" || out.service_final) {
      // Ended: its exit code and log from the NodeManager, recorded before they are gone.
      const std::string nm = absl::StrReplaceAll(options_.nodemanager_url, {{"{host}", t.host}});
      SUBMARINE_ASSIGN_OR_RETURN(
          net::HttpAnswer info,
          http_.Send("GET", absl::StrCat(nm, "/ws/v1/node/containers/", container_id,
                                         "?user.name=", options_.user)));
      absl::Status info_status =
          YarnAnswerStatus(info, absl::StrCat("GET container ", container_id));
      if (!info_status.ok() && !absl::IsNotFound(info_status)) {
        return absl::UnavailableError(info_status.message());
      }
      json nm_container = json::parse(info.body, nullptr, false);
      if (info_status.ok() && nm_container.is_object()) {
        const json k = nm_container.value("container", json::object());
        const int code = k.value("exitCode", -1000);
        if (code != -1000) t.exit_code = code;
      }
      auto log = FetchLog(t.host, container_id);
      if (!log.ok() && !absl::IsNotFound(log.status())) return log.status();
      SUBMARINE_RETURN_IF_ERROR(
          WriteStateFile(absl::StrCat(dir, "/", name, ".log"), log.ok() ? *log : ""));
      const std::string log_note = log.ok() ? "" : "; its log was gone from the NodeManager";
      t.finish_time = now;
      const std::string code_text =
          t.exit_code ? absl::StrCat("exit code ", *t.exit_code) : "exit code unknown";
      if (state == "SUCCEEDED") {
        t.phase = Phase::kSucceeded;
        t.message = log_note.empty() ? "" : log_note.substr(2);
      } else if (state == "STOPPED" || stop || service_state == "STOPPED") {
        t.phase = Phase::kKilled;
        t.message = absl::StrCat("stopped on request (", code_text, ")", log_note);
      } else {
        t.phase = Phase::kFailed;
        t.message = absl::StrCat(code_text, " (component instance ", name, ", container ",
                                 container_id, ")", log_note);
      }
      SUBMARINE_RETURN_IF_ERROR(RecordTask(dir, name, t));
    } else if (state == "INIT" || state.empty()) {
      t.phase = Phase::kPending;
    } else {
      t.phase = Phase::kRunning;
      out.running[name] = container_id;
    }
    status.tasks.push_back(t);
  }

  // The workload's phase: a recorded verdict holds; otherwise decide and record it first.
  bool all_final = true;
  bool all_succeeded = true;
  bool started = false;
  const TaskStatus* failed = nullptr;
  for (const TaskStatus& t : status.tasks) {
    all_final = all_final && IsFinal(t.phase);
    all_succeeded = all_succeeded && t.phase == Phase::kSucceeded;
    started = started || t.phase != Phase::kPending;
    if (t.phase == Phase::kFailed && failed == nullptr) failed = &t;
  }
  if (!verdict) {
    std::optional<json> decided;
    if (failed != nullptr) {
      decided = json{
          {"phase", PhaseName(Phase::kFailed)},
          {"message", absl::StrCat("task ", TaskName(failed->task), " failed: ", failed->message)}};
    } else if (all_succeeded) {
      decided = json{{"phase", PhaseName(Phase::kSucceeded)}, {"message", ""}};
    } else if (stop && (all_final || out.service_final)) {
      decided = json{{"phase", PhaseName(Phase::kKilled)}, {"message", "stopped on request"}};
    }
    if (decided) {
      SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/verdict.json", decided->dump()));
      verdict = decided;
    }
  }
  if (verdict) {
    status.phase = RecordedPhase(verdict->value("phase", ""));
    status.message = verdict->value("message", "");
  } else {
    status.phase = started ? Phase::kRunning : Phase::kPending;
  }
  if (IsFinal(status.phase) && all_final) {
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/final.json", StatusJson(status).dump()));
  }
  return out;
}

absl::StatusOr<WorkloadStatus> YarnBackend::Get(const std::string& id) {
  std::lock_guard lock(WorkloadMutex(id));
  SUBMARINE_ASSIGN_OR_RETURN(Observation seen, Observe(id));
  if (!seen.service_final) {
    // A failed workload stops the tasks still running; a stop's grace ends in a forced stop.
    bool stop_now = seen.status.phase == Phase::kFailed;
    if (auto stop = ReadJsonFile(Dir(id) + "/stop.json")) {
      const int64_t due =
          stop->value("requested_us", int64_t{0}) + stop->value("grace_ms", int64_t{0}) * 1000;
      stop_now = stop_now || local::NowMicros() >= due;
    }
    if (stop_now) {
      // An error here changes nothing; the next Get asks again.
      (void)StopService(id);
    }
  }
  return std::move(seen.status);
}

absl::StatusOr<std::vector<WorkloadStatus>> YarnBackend::List() {
  std::vector<std::string> ids;
  {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options_.logs_dir, ec)) {
      if (entry.is_directory()) ids.push_back(entry.path().filename().string());
    }
    if (ec) return Unavailable(absl::StrCat("cannot list ", options_.logs_dir, ": ", ec.message()));
  }
  std::sort(ids.begin(), ids.end());
  std::vector<WorkloadStatus> out;
  for (const std::string& id : ids) {
    auto s = Get(id);
    if (absl::IsNotFound(s.status())) continue;
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

// ---- Service workloads ----

std::string YarnBackend::NodeManagerUrl(const std::string& host) const {
  return absl::StrReplaceAll(options_.nodemanager_url, {{"{host}", host}});
}

absl::StatusOr<int> YarnBackend::RecordContainer(const std::string& id, const std::string& name,
                                                 const std::string& host,
                                                 const std::string& container) {
  const std::string file = absl::StrCat(Dir(id), "/tasks/", name, ".containers.json");
  std::vector<RecordedContainer> records = ReadRecords(file);
  for (const RecordedContainer& r : records) {
    if (r.id == container) return r.attempt;
  }
  const std::string url = absl::StrCat(NodeManagerUrl(host), "/ws/v1/node/containerlogs/",
                                       container, "/", kAttemptsFile, "?user.name=", options_.user);
  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", url));
  absl::Status s = YarnAnswerStatus(answer, absl::StrCat("GET attempts of ", container));
  if (absl::IsNotFound(s)) return 0;  // its prelude has not run yet
  if (!s.ok()) return absl::UnavailableError(s.message());
  int attempt = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(answer.body, '\n', absl::SkipWhitespace())) {
    ++line_number;
    const std::string listed(absl::StripAsciiWhitespace(line));
    if (listed == container) attempt = line_number;
    const bool known = std::any_of(records.begin(), records.end(),
                                   [&](const RecordedContainer& r) { return r.id == listed; });
    if (!known) records.push_back({listed, host, line_number});
  }
  if (attempt == 0) return 0;  // copied before this container listed itself
  SUBMARINE_RETURN_IF_ERROR(WriteStateFile(file, RecordsJson(records).dump()));
  return attempt;
}

absl::Status YarnBackend::ArchiveEnded(const std::string& id, const std::string& name,
                                       const std::string& running) {
  const std::string dir = Dir(id);
  for (const RecordedContainer& r :
       ReadRecords(absl::StrCat(dir, "/tasks/", name, ".containers.json"))) {
    const std::string archive = absl::StrCat(dir, "/attempts/", name, "/", r.attempt, ".log");
    if (r.id == running || local::FileExists(archive)) continue;
    auto log = FetchLog(r.host, r.id);
    if (!log.ok() && !absl::IsNotFound(log.status())) return log.status();
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(archive, log.ok() ? *log : ""));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> YarnBackend::ReadinessFailures(const std::string& app_id) {
  // YARN reports why a container is RUNNING_BUT_UNREADY only in its ApplicationMaster's log
  // (ServiceMonitor: "Readiness check failed for <instance>: <probe status>"): found through
  // the RM's application report, read from the AM's NodeManager, the latest line per instance.
  std::map<std::string, std::string> out;
  auto app = http_.Send("GET", absl::StrCat(options_.rm_url, "/ws/v1/cluster/apps/", app_id,
                                            "?user.name=", options_.user));
  if (!app.ok() || app->status != 200) return out;
  const json report = json::parse(app->body, nullptr, false);
  if (!report.is_object() || !report.contains("app") || !report["app"].is_object()) return out;
  std::string am_container;
  for (absl::string_view part :
       absl::StrSplit(report["app"].value("amContainerLogs", ""), '/', absl::SkipEmpty())) {
    if (absl::StartsWith(part, "container_")) am_container = std::string(part);
  }
  const std::string am_host =
      std::vector<std::string>(absl::StrSplit(report["app"].value("amHostHttpAddress", ""), ':'))
          .front();
  if (am_container.empty() || am_host.empty()) return out;
  // The AM logs through log4j to serviceam.log where its log4j configuration says so, else to
  // its stderr (serviceam-err.txt): the first of these its NodeManager lists.
  auto info = http_.Send("GET", absl::StrCat(NodeManagerUrl(am_host), "/ws/v1/node/containers/",
                                             am_container, "?user.name=", options_.user));
  if (!info.ok() || info->status != 200) return out;
  const json listed = json::parse(info->body, nullptr, false);
  if (!listed.is_object() || !listed.contains("container") || !listed["container"].is_object()) {
    return out;
  }
  const json files = listed["container"].value("containerLogFiles", json::array());
  std::string am_log;
  for (const char* name : {"serviceam.log", "serviceam-err.txt", "serviceam-out.txt"}) {
    if (am_log.empty() && files.is_array() &&
        std::find(files.begin(), files.end(), json(name)) != files.end()) {
      am_log = name;
    }
  }
  if (am_log.empty()) return out;
  auto log = http_.Send(
      "GET", absl::StrCat(NodeManagerUrl(am_host), "/ws/v1/node/containerlogs/", am_container, "/",
                          am_log, "?size=-65536&user.name=", options_.user));
  if (!log.ok() || log->status != 200) return out;
  static constexpr absl::string_view kFailed = "Readiness check failed for ";
  static constexpr absl::string_view kSucceeded = "Readiness check succeeded for ";
  for (absl::string_view line : absl::StrSplit(log->body, '\n')) {
    if (size_t at = line.find(kFailed); at != absl::string_view::npos) {
      absl::string_view rest = line.substr(at + kFailed.size());
      const size_t colon = rest.find(": ");
      if (colon == absl::string_view::npos) continue;
      out[std::string(rest.substr(0, colon))] =
          DescribeProbeFailure(std::string(rest.substr(colon + 2)));
    } else if (size_t at = line.find(kSucceeded); at != absl::string_view::npos) {
      absl::string_view rest = line.substr(at + kSucceeded.size());
      out.erase(std::string(rest.substr(0, rest.find(':'))));
    }
  }
  return out;
}

absl::Status YarnBackend::ObserveService(const std::string& id, const WorkloadSpec& spec,
                                         const json& service, const std::string& service_state,
                                         const std::map<std::string, json>& containers,
                                         Observation& out) {
  const std::string dir = Dir(id);
  WorkloadStatus& status = out.status;
  const auto now = std::chrono::system_clock::now();
  auto records_of = [&](const std::string& name) {
    return ReadRecords(absl::StrCat(dir, "/tasks/", name, ".containers.json"));
  };

  if (out.service_final) {
    // A service ends only when stopped (or failed by YARN, or destroyed): every task takes
    // that outcome, its logs archived while the NodeManagers still have them.
    const bool stopped = local::FileExists(dir + "/stop.json") || service_state == "STOPPED";
    const Phase phase = stopped ? Phase::kKilled : Phase::kFailed;
    const std::string why = stopped ? "stopped on request"
                            : service_state == "DESTROYED"
                                ? "the YARN service was destroyed outside Submarine"
                                : absl::StrCat("the YARN service ended ", service_state);
    for (const TaskRef& ref : TasksOf(spec)) {
      const std::string name = TaskName(ref);
      if (auto recorded = RecordedTask(dir, name)) {
        status.tasks.push_back(*recorded);
        continue;
      }
      TaskStatus t;
      t.task = ref;
      t.phase = phase;
      t.message = why;
      t.finish_time = now;
      if (auto it = containers.find(name); it != containers.end()) {
        t.host = it->second.value("bare_host", "");
        SUBMARINE_RETURN_IF_ERROR(
            RecordContainer(id, name, t.host, it->second.value("id", "")).status());
      }
      SUBMARINE_RETURN_IF_ERROR(ArchiveEnded(id, name, ""));
      const auto records = records_of(name);
      if (!records.empty()) t.attempt = records.back().attempt;
      SUBMARINE_RETURN_IF_ERROR(RecordTask(dir, name, t));
      status.tasks.push_back(t);
    }
    status.phase = phase;
    status.message = why;
    const json verdict = {{"phase", PhaseName(phase)}, {"message", why}};
    SUBMARINE_RETURN_IF_ERROR(WriteStateFile(dir + "/verdict.json", verdict.dump()));
    return WriteStateFile(dir + "/final.json", StatusJson(status).dump());
  }

  // Each role's port as the RM runs it (SUBMARINE_PORT of its component), else as configured.
  std::map<std::string, std::string> ports;
  for (const RoleSpec& role : spec.roles)
    ports[role.name] = absl::StrCat(ServicePort(role, options_));
  for (const json& c : service.value("components", json::array())) {
    const json env = c.value("configuration", json::object()).value("env", json::object());
    if (c.value("name", "").empty() || !env.is_object()) continue;
    if (env.contains("SUBMARINE_PORT") && env["SUBMARINE_PORT"].is_string()) {
      ports[c.value("name", "")] = env["SUBMARINE_PORT"].get<std::string>();
    }
  }
  std::optional<std::map<std::string, std::string>> unready;  // read once, when needed
  bool started = false;
  for (const TaskRef& ref : TasksOf(spec)) {
    const std::string name = TaskName(ref);
    TaskStatus t;
    t.task = ref;
    auto it = containers.find(name);
    const std::string state = it == containers.end() ? "" : it->second.value("state", "");
    if (state.empty() || state == "INIT") {
      // No container yet: a new instance, or one waiting for its next container.
      const auto records = records_of(name);
      if (records.empty()) {
        t.phase = Phase::kPending;
      } else {
        started = true;
        t.phase = Phase::kRunning;
        t.attempt = records.back().attempt;
        t.message = "restarting: waiting for a container";
      }
      status.tasks.push_back(t);
      continue;
    }
    started = true;
    const json& c = it->second;
    const std::string container = c.value("id", "");
    t.host = c.value("bare_host", c.value("hostname", ""));
    if (c.contains("launch_time") && c["launch_time"].is_number()) {
      t.start_time = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(c["launch_time"].get<int64_t>()));
    }
    t.phase = Phase::kRunning;
    SUBMARINE_ASSIGN_OR_RETURN(const int attempt, RecordContainer(id, name, t.host, container));
    const bool ended = state == "SUCCEEDED" || state == "FAILED" || state == "STOPPED";
    SUBMARINE_RETURN_IF_ERROR(ArchiveEnded(id, name, ended && attempt > 0 ? "" : container));
    if (attempt == 0) {
      const auto records = records_of(name);
      t.attempt = records.empty() ? 1 : records.back().attempt + 1;
      t.message = "starting";
    } else if (ended) {
      t.attempt = attempt;
      t.message = absl::StrCat("exited (container ", state, "); YARN starts it again");
    } else {
      t.attempt = attempt;
      t.endpoint = absl::StrCat(c.value("ip", t.host), ":", ports[ref.role]);
      t.ready = state == "READY";
      if (!t.ready) {
        if (!unready) unready = ReadinessFailures(service.value("id", ""));
        auto why = unready->find(name);
        t.message = why != unready->end() ? absl::StrCat("not ready: ", why->second)
                                          : "not ready: its readiness check has not passed yet";
      }
    }
    status.tasks.push_back(t);
  }
  status.phase = started || status.tasks.empty() ? Phase::kRunning : Phase::kPending;
  if (status.tasks.empty()) status.message = "scaled to zero replicas";
  return absl::OkStatus();
}

absl::Status YarnBackend::Scale(const std::string& id, const std::string& role_name, int replicas,
                                std::chrono::milliseconds grace) {
  if (replicas < 0 || replicas > kMaxReplicas) {
    return InvalidField("replicas", absl::StrCat("must be 0 to ", kMaxReplicas));
  }
  // YARN's flex takes no grace (the NodeManager's delay before SIGKILL applies), but a
  // negative one is still a bad request.
  if (grace.count() < 0) return InvalidField("grace", "must not be negative");
  if (!ValidId(id)) return NotFound("workload", QuoteInput(id));
  std::lock_guard lock(WorkloadMutex(id));
  const std::string dir = Dir(id);
  SUBMARINE_ASSIGN_OR_RETURN(Observation seen, Observe(id));
  if (seen.kind != WorkloadKind::kService) {
    return absl::FailedPreconditionError(
        absl::StrCat("workload ", id, " is a batch workload: only service workloads scale"));
  }
  if (IsFinal(seen.status.phase) || local::FileExists(dir + "/stop.json")) {
    return absl::FailedPreconditionError(absl::StrCat("workload ", id, " is stopped"));
  }
  auto stored = ReadJsonFile(dir + "/workload.json");
  if (!stored) return NotFound("workload", id);
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(*stored));
  auto role = std::find_if(spec.roles.begin(), spec.roles.end(),
                           [&](const RoleSpec& r) { return r.name == role_name; });
  if (role == spec.roles.end()) {
    return NotFound("role", absl::StrCat(id, "/", QuoteInput(role_name)));
  }
  const int before = role->replicas;
  // Asked again even when the count is already stored: a flex whose record failed is retried.
  SUBMARINE_ASSIGN_OR_RETURN(
      net::HttpAnswer answer,
      http_.Send("PUT",
                 absl::StrCat(options_.rm_url, "/app/v1/services/", id, "/components/", role_name,
                              "?user.name=", options_.user),
                 json{{"number_of_containers", replicas}}.dump()));
  absl::Status flexed = YarnAnswerStatus(answer, absl::StrCat("flex ", id, "/", role_name));
  if (!flexed.ok()) return absl::UnavailableError(flexed.message());
  // An index scaled away and now back is a new instance: the records of the old one go.
  for (int index = before; index < replicas; ++index) {
    const std::string name = TaskName({role_name, index});
    std::error_code ec;
    fs::remove(absl::StrCat(dir, "/tasks/", name, ".containers.json"), ec);
    fs::remove_all(absl::StrCat(dir, "/attempts/", name), ec);
  }
  role->replicas = replicas;
  // The stored spec names its secrets only, as Submit stored it.
  json updated = SpecToJson(spec);
  return WriteStateFile(dir + "/workload.json", updated.dump());
}

absl::StatusOr<LogChunk> YarnBackend::ReadServiceLog(const std::string& id,
                                                     const WorkloadSpec& spec, const TaskRef& task,
                                                     int64_t offset, int64_t max_bytes) {
  std::lock_guard lock(WorkloadMutex(id));
  const std::string dir = Dir(id);
  const std::string name = TaskName(task);
  const std::vector<TaskRef> tasks = TasksOf(spec);
  const bool current = std::find(tasks.begin(), tasks.end(), task) != tasks.end();
  const bool final = local::FileExists(dir + "/final.json") || local::FileExists(dir + "/deleted");
  if (current && !final && local::FileExists(dir + "/submitted")) {
    // Records what runs now and archives what ended.
    SUBMARINE_RETURN_IF_ERROR(Observe(id).status());
  }
  const auto records = ReadRecords(absl::StrCat(dir, "/tasks/", name, ".containers.json"));
  if (!current && records.empty()) {
    return absl::NotFoundError(
        absl::StrCat("workload ", id, " has no task ", QuoteInput(task.role), "-", task.index));
  }
  std::string text;
  bool all_archived = true;
  for (const RecordedContainer& r : records) {
    const std::string archive = absl::StrCat(dir, "/attempts/", name, "/", r.attempt, ".log");
    if (auto archived = local::ReadSmallFile(archive); archived.ok()) {
      text += *archived;
      continue;
    }
    if (final) continue;  // the NodeManager had lost it
    auto log = FetchLog(r.host, r.id);
    if (!log.ok() && !absl::IsNotFound(log.status())) return log.status();
    const std::string live = log.ok() ? *log : "";
    text += live;
    if (current) {
      all_archived = false;
      continue;
    }
    // A replica scaled away: its log is final once its container is.
    SUBMARINE_ASSIGN_OR_RETURN(
        net::HttpAnswer info,
        http_.Send("GET", absl::StrCat(NodeManagerUrl(r.host), "/ws/v1/node/containers/", r.id,
                                       "?user.name=", options_.user)));
    json k = json::parse(info.body, nullptr, false);
    if (info.status == 200 && k.is_object() &&
        k.value("container", json::object()).value("state", "") == "DONE") {
      SUBMARINE_RETURN_IF_ERROR(WriteStateFile(archive, live));
    } else {
      all_archived = false;
    }
  }
  LogChunk chunk;
  chunk.size = static_cast<int64_t>(text.size());
  const int64_t start = std::clamp<int64_t>(offset, 0, chunk.size);
  chunk.data = text.substr(start, std::max<int64_t>(0, max_bytes));
  chunk.next_offset = start + static_cast<int64_t>(chunk.data.size());
  chunk.complete = final || (!current && all_archived);
  return chunk;
}

// ---- Stop and Delete ----

absl::Status YarnBackend::Stop(const std::string& id, std::chrono::milliseconds grace) {
  std::lock_guard lock(WorkloadMutex(id));
  SUBMARINE_ASSIGN_OR_RETURN(Observation seen, Observe(id));
  if (IsFinal(seen.status.phase) || seen.service_final) return absl::OkStatus();
  const std::string stop_file = Dir(id) + "/stop.json";
  if (!local::FileExists(stop_file)) {
    SUBMARINE_RETURN_IF_ERROR(
        WriteStateFile(stop_file, json{{"grace_ms", std::max<int64_t>(0, grace.count())},
                                       {"requested_us", local::NowMicros()}}
                                      .dump()));
  }
  // A service's instances would be started again as their containers exit: the service is
  // stopped at once (SIGTERM, SIGKILL after the NodeManager's delay).
  if (grace.count() <= 0 || seen.kind == WorkloadKind::kService) return StopService(id);
  for (const auto& [task, container] : seen.running) {
    SUBMARINE_ASSIGN_OR_RETURN(
        net::HttpAnswer answer,
        http_.Send("POST", absl::StrCat(options_.rm_url, "/ws/v1/cluster/containers/", container,
                                        "/signal/GRACEFUL_SHUTDOWN?user.name=", options_.user)));
    absl::Status s = YarnAnswerStatus(answer, absl::StrCat("signal ", container));
    if (!s.ok() && !absl::IsNotFound(s)) return absl::UnavailableError(s.message());
  }
  return absl::OkStatus();
}

absl::Status YarnBackend::Delete(const std::string& id, bool keep_logs) {
  if (!ValidId(id)) return absl::OkStatus();
  std::lock_guard lock(WorkloadMutex(id));
  const std::string dir = Dir(id);
  auto stored = ReadJsonFile(dir + "/workload.json");
  const bool serving = stored && stored->is_object() &&
                       stored->value("kind", 0) == static_cast<int>(WorkloadKind::kService);
  if (serving && keep_logs && !local::FileExists(dir + "/final.json") &&
      local::FileExists(dir + "/submitted") && !local::FileExists(dir + "/deleted")) {
    // Every container recorded for an instance, current or scaled away.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir + "/tasks", ec)) {
      const std::string file = entry.path().filename().string();
      constexpr absl::string_view kSuffix = ".containers.json";
      if (!absl::EndsWith(file, kSuffix)) continue;
      SUBMARINE_RETURN_IF_ERROR(ArchiveEnded(id, file.substr(0, file.size() - kSuffix.size()), ""));
    }
  } else if (keep_logs && !local::FileExists(dir + "/final.json") &&
             local::FileExists(dir + "/submitted") && !local::FileExists(dir + "/deleted")) {
    // Archive what the NodeManagers still hold before the service goes.
    SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", ServiceUrl(id)));
    absl::Status got = YarnAnswerStatus(answer, absl::StrCat("GET service ", id));
    if (!got.ok() && !absl::IsNotFound(got)) return absl::UnavailableError(got.message());
    json service = json::parse(answer.body, nullptr, false);
    if (got.ok() && service.is_object()) {
      for (const json& c : service.value("components", json::array())) {
        for (const json& k : c.value("containers", json::array())) {
          const std::string name = k.value("component_instance_name", "");
          const std::string log_file = absl::StrCat(dir, "/", name, ".log");
          if (name.empty() || local::FileExists(log_file) || k.value("state", "") == "INIT")
            continue;
          auto log = FetchLog(k.value("bare_host", ""), k.value("id", ""));
          if (absl::IsNotFound(log.status())) continue;
          if (!log.ok()) return log.status();
          SUBMARINE_RETURN_IF_ERROR(WriteStateFile(log_file, *log));
        }
      }
    }
  }
  SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("DELETE", ServiceUrl(id)));
  absl::Status deleted = YarnAnswerStatus(answer, absl::StrCat("DELETE service ", id));
  if (!deleted.ok() && !absl::IsNotFound(deleted)) return absl::UnavailableError(deleted.message());
  std::error_code ec;
  if (!keep_logs) {
    fs::remove_all(dir, ec);
    if (ec) return Unavailable(absl::StrCat("cannot remove ", dir, ": ", ec.message()));
    return absl::OkStatus();
  }
  if (!fs::exists(dir + "/workload.json")) return absl::OkStatus();
  return WriteStateFile(dir + "/deleted", absl::StrCat(local::NowMicros()));
}

// ---- Logs ----

absl::StatusOr<LogChunk> YarnBackend::ReadLog(const std::string& id, const TaskRef& task,
                                              int64_t offset, int64_t max_bytes) {
  if (!ValidId(id)) return absl::NotFoundError(absl::StrCat("no workload ", QuoteInput(id)));
  const std::string dir = Dir(id);
  auto stored = ReadJsonFile(dir + "/workload.json");
  if (!stored) return absl::NotFoundError(absl::StrCat("no workload ", id));
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(*stored));
  if (spec.kind == WorkloadKind::kService) {
    if (!ValidName(task.role, 40) || task.index < 0) {
      return absl::NotFoundError(
          absl::StrCat("workload ", id, " has no task ", QuoteInput(task.role), "-", task.index));
    }
    return ReadServiceLog(id, spec, task, offset, max_bytes);
  }
  const std::vector<TaskRef> tasks = TasksOf(spec);
  if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) {
    return absl::NotFoundError(
        absl::StrCat("workload ", id, " has no task ", QuoteInput(task.role), "-", task.index));
  }
  const std::string name = TaskName(task);
  std::string text;
  bool complete = false;
  if (auto archived = local::ReadSmallFile(absl::StrCat(dir, "/", name, ".log")); archived.ok()) {
    text = std::move(*archived);
    complete = true;
  } else if (local::FileExists(dir + "/deleted") || local::FileExists(dir + "/final.json") ||
             !local::FileExists(dir + "/submitted")) {
    complete = local::FileExists(dir + "/submitted");
  } else {
    SUBMARINE_ASSIGN_OR_RETURN(net::HttpAnswer answer, http_.Send("GET", ServiceUrl(id)));
    absl::Status got = YarnAnswerStatus(answer, absl::StrCat("GET service ", id));
    if (absl::IsNotFound(got)) {
      complete = true;
    } else if (!got.ok()) {
      return absl::UnavailableError(got.message());
    } else {
      json service = json::parse(answer.body, nullptr, false);
      for (const json& c :
           service.is_object() ? service.value("components", json::array()) : json::array()) {
        for (const json& k : c.value("containers", json::array())) {
          if (k.value("component_instance_name", "") != name || k.value("state", "") == "INIT") {
            continue;
          }
          auto log = FetchLog(k.value("bare_host", ""), k.value("id", ""));
          if (!log.ok() && !absl::IsNotFound(log.status())) return log.status();
          if (log.ok()) text = std::move(*log);
        }
      }
    }
  }
  LogChunk chunk;
  chunk.size = static_cast<int64_t>(text.size());
  const int64_t start = std::clamp<int64_t>(offset, 0, chunk.size);
  chunk.data = text.substr(start, std::max<int64_t>(0, max_bytes));
  chunk.next_offset = start + static_cast<int64_t>(chunk.data.size());
  chunk.complete = complete;
  return chunk;
}

}  // namespace submarine::compute
