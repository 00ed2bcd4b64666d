#include "common/compute/kubernetes_backend.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/compute/quantity.h"
#include "common/compute/task_files.h"
#include "common/compute/workload.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::compute {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
constexpr char kManagedBy[] = "submarine";
constexpr char kWorkloadLabel[] = "submarine.apache.org/workload";
constexpr char kRoleLabel[] = "submarine.apache.org/role";
constexpr char kSubmittedAnnotation[] = "submarine.apache.org/submitted";
constexpr char kStopAnnotation[] = "submarine.apache.org/stop";
constexpr char kFinalAnnotation[] = "submarine.apache.org/final";
constexpr char kApiAnnotation[] = "submarine.apache.org/api";  // "trainjob"; absent: Jobs
constexpr char kTrainJobApi[] = "trainjob";
constexpr char kKueueQueueLabel[] = "kueue.x-k8s.io/queue-name";
constexpr char kKueueJobNameLabel[] = "kueue.x-k8s.io/job-name";
constexpr char kKueueGroupVersion[] = "kueue.x-k8s.io/v1beta2";
constexpr char kIndexAnnotation[] = "batch.kubernetes.io/job-completion-index";
constexpr char kIndexFailuresAnnotation[] = "batch.kubernetes.io/job-index-failure-count";
constexpr char kSpecKey[] = "workload.json";
// kService: the replicas per role after the last Scale ({"worker": 3}; absent: the spec's), and
// "true" once a replica ran (the workload is RUNNING from then on, whatever its replicas do).
constexpr char kReplicasAnnotation[] = "submarine.apache.org/replicas";
constexpr char kStartedAnnotation[] = "submarine.apache.org/started";
// kService: why the workload fails once its replicas are gone (a StatefulSet deleted by others).
constexpr char kFailureAnnotation[] = "submarine.apache.org/failure";
constexpr char kPodIndexLabel[] = "apps.kubernetes.io/pod-index";
constexpr char kServicePortName[] = "serve";
constexpr int kDefaultServicePort = 8080;
// Where a service replica's prelude counts its container's starts: an emptyDir, which outlives
// the container's restarts but not the pod.
constexpr char kRunDir[] = "/var/run/submarine";
constexpr char kContainer[] = "task";
constexpr int kTensorflowPort = 2222;
constexpr int kPytorchPort = 23456;
constexpr int kXgboostTrackerPort = 9091;
constexpr auto kFailureGrace = std::chrono::seconds(10);
constexpr char kMetricsGroupVersion[] = "metrics.k8s.io/v1beta1";

std::string JobName(const std::string& id, const std::string& role) {
  return absl::StrCat(id, "-", role);
}

const json& Meta(const json& o) {
  static const json kEmpty = json::object();
  auto it = o.find("metadata");
  return it != o.end() && it->is_object() ? *it : kEmpty;
}

std::string Annotation(const json& o, const std::string& key) {
  const json& a = Meta(o).value("annotations", json::object());
  auto it = a.find(key);
  return it != a.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Label(const json& o, const std::string& key) {
  const json& l = Meta(o).value("labels", json::object());
  auto it = l.find(key);
  return it != l.end() && it->is_string() ? it->get<std::string>() : "";
}

bool HasCondition(const json& job, const std::string& type) {
  for (const json& c : job.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == type && c.value("status", "") == "True") return true;
  }
  return false;
}

std::optional<std::chrono::system_clock::time_point> ParseTime(const json& value) {
  if (!value.is_string()) return std::nullopt;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value.get<std::string>(), &t, &err)) {
    return std::nullopt;
  }
  return absl::ToChronoTime(t);
}

json FormatTime(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return nullptr;
  return absl::FormatTime(absl::RFC3339_full, absl::FromChrono(*t), absl::UTCTimeZone());
}

json TaskToJson(const TaskStatus& t) {
  json usage = nullptr;
  if (t.usage) {
    usage = {{"cpu_seconds", t.usage->cpu_seconds},
             {"memory_bytes", t.usage->memory_bytes},
             {"max_memory_bytes", t.usage->max_memory_bytes}};
  }
  return {{"role", t.task.role},
          {"index", t.task.index},
          {"attempt", t.attempt},
          {"phase", static_cast<int>(t.phase)},
          {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)},
          {"signal", t.signal ? json(*t.signal) : json(nullptr)},
          {"host", t.host},
          {"start", FormatTime(t.start_time)},
          {"finish", FormatTime(t.finish_time)},
          {"message", t.message},
          {"usage", usage}};
}

TaskStatus TaskFromJson(const json& j) {
  TaskStatus t;
  t.task = {j.value("role", ""), j.value("index", 0)};
  t.attempt = j.value("attempt", 1);
  t.phase = static_cast<Phase>(j.value("phase", 0));
  if (j.contains("exit_code") && j["exit_code"].is_number()) t.exit_code = j["exit_code"];
  if (j.contains("signal") && j["signal"].is_number()) t.signal = j["signal"];
  t.host = j.value("host", "");
  if (j.contains("start")) t.start_time = ParseTime(j["start"]);
  if (j.contains("finish")) t.finish_time = ParseTime(j["finish"]);
  t.message = j.value("message", "");
  auto usage = j.find("usage");
  if (usage != j.end() && usage->is_object()) {
    t.usage = Usage{usage->value("cpu_seconds", 0.0), usage->value("memory_bytes", int64_t{0}),
                    usage->value("max_memory_bytes", int64_t{0})};
  }
  return t;
}

// The shell prelude every replica runs before exec'ing its argv: the replica's index comes from
// the Job controller (JOB_COMPLETION_INDEX), so the settings that depend on it are made here.
std::string Prelude(Framework framework) {
  std::string s =
      "i=\"${JOB_COMPLETION_INDEX:-0}\"\n"
      "export SUBMARINE_TASK_INDEX=\"$i\"\n"
      "export SUBMARINE_TASK_ATTEMPT=$(( ${SUBMARINE_INDEX_FAILURES:-0} + 1 ))\n"
      "unset SUBMARINE_INDEX_FAILURES\n";
  switch (framework) {
    case Framework::kPlain:
      break;
    case Framework::kTensorflow:
      s += "export TF_CONFIG=\"{\\\"cluster\\\":${SUBMARINE_TF_CLUSTER},\\\"task\\\":"
           "{\\\"type\\\":\\\"${SUBMARINE_TASK_ROLE}\\\",\\\"index\\\":$i}}\"\n";
      break;
    case Framework::kPytorch:
      s += "export RANK=$(( SUBMARINE_RANK_OFFSET + i ))\n";
      break;
    case Framework::kXgboost:
      s += "export DMLC_TASK_ID=$(( SUBMARINE_RANK_OFFSET + i ))\n";
      break;
  }
  s += "exec \"$@\"\n";
  return s;
}

// The prelude of a service replica: its index is its StatefulSet pod's ordinal (the end of its
// host name) and its attempt counts its container's starts in the pod (the kubelet restarts it
// in place with the same environment), kept in an emptyDir (or, where that cannot be written, a
// temporary directory) by the pod's uid.
std::string ServicePrelude() {
  return absl::StrCat(
      "export SUBMARINE_TASK_INDEX=\"${HOSTNAME##*-}\"\n"
      "d=\"${SUBMARINE_RUN_DIR:-",
      kRunDir,
      "}\"; { mkdir -p \"$d\" && [ -w \"$d\" ]; } 2>/dev/null || d=\"${TMPDIR:-/tmp}\"\n"
      "f=\"$d/attempt-$SUBMARINE_POD_UID\"\n"
      "a=$(( $(cat \"$f\" 2>/dev/null || echo 0) + 1 ))\n"
      "echo \"$a\" > \"$f\"\n"
      "export SUBMARINE_TASK_ATTEMPT=\"$a\"\n"
      "unset SUBMARINE_POD_UID SUBMARINE_RUN_DIR d f a\n"
      "exec \"$@\"\n");
}

int ServicePort(const RoleSpec& role) { return role.port > 0 ? role.port : kDefaultServicePort; }

json ResourcesJson(const Resources& r) {
  json list = json::object();
  if (r.cpu_millis > 0) list["cpu"] = absl::StrCat(r.cpu_millis, "m");
  if (r.memory_bytes > 0) list["memory"] = absl::StrCat(r.memory_bytes);
  json out = json::object();
  if (!list.empty()) out["requests"] = list;
  json limits = list;
  if (r.gpus > 0) limits["nvidia.com/gpu"] = absl::StrCat(r.gpus);
  if (!limits.empty()) out["limits"] = limits;
  return out;
}

absl::Status ValidateForKubernetes(const WorkloadSpec& spec, const std::string& default_image) {
  SUBMARINE_RETURN_IF_ERROR(ValidateWorkloadSpec(spec));
  if (!absl::ascii_isalpha(spec.id[0])) {
    return InvalidField("spec.id", "must start with a letter on Kubernetes (a Service name)");
  }
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    const RoleSpec& role = spec.roles[i];
    const std::string field = absl::StrCat("spec.roles[", i, "]");
    // The longest pod hostname, <id>-<role>-<index>, is a DNS label.
    const size_t longest = JobName(spec.id, role.name).size() + 1 +
                           absl::StrCat(std::max(role.replicas - 1, 0)).size();
    if (longest > 63) {
      return InvalidField(field + ".name",
                          absl::StrCat("\"", spec.id, "-", role.name,
                                       "-N\" is longer than a Kubernetes name (63 characters)"));
    }
    // A StatefulSet's controller-revision-hash label, <name>-<10 characters>, is a label value.
    if (spec.kind == WorkloadKind::kService && JobName(spec.id, role.name).size() > 52) {
      return InvalidField(field + ".name",
                          absl::StrCat("\"", spec.id, "-", role.name,
                                       "\" is longer than a StatefulSet name (52 characters)"));
    }
    if (role.image.empty() && default_image.empty()) {
      return InvalidField(field + ".image", "is required on Kubernetes (no default image is set)");
    }
  }
  for (const auto& [key, value] : spec.secret_env) {
    // A Secret's keys: [-._a-zA-Z0-9]+.
    if (!std::all_of(key.begin(), key.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                 c == '_';
        })) {
      return InvalidField("spec.secret_env",
                          absl::StrCat("\"", QuoteInput(key), "\" cannot be a Secret key"));
    }
  }
  return absl::OkStatus();
}

// Where a task reads spec.secret_env as files (SUBMARINE_SECRETS_DIR): the workload's Secret
// mounted read-only, which the kubelet refreshes when UpdateSecrets patches the Secret (within
// its sync period, about a minute on a real cluster). Files keep the volume's default mode 0644:
// the container is the boundary, and its user reads the same values from its environment.
constexpr char kSecretsMountPath[] = "/var/run/secrets/submarine";
constexpr char kSecretsVolumeName[] = "submarine-secrets";

// Mounts the workload's Secret into a pod template's (only) container.
void MountSecrets(const WorkloadSpec& spec, json& pod_spec) {
  if (spec.secret_env.empty()) return;
  pod_spec["volumes"].push_back(
      {{"name", kSecretsVolumeName}, {"secret", {{"secretName", spec.id}}}});
  pod_spec["containers"][0]["volumeMounts"].push_back(
      {{"name", kSecretsVolumeName}, {"mountPath", kSecretsMountPath}, {"readOnly", true}});
}

// Whether a Job's or StatefulSet's pods mount the workload's Secret (a workload submitted
// before secrets were mounted does not).
bool MountsSecrets(const json& object) {
  const json& volumes = object.value("spec", json::object())
                            .value("template", json::object())
                            .value("spec", json::object())
                            .value("volumes", json::array());
  return std::any_of(volumes.begin(), volumes.end(),
                     [](const json& v) { return v.value("name", "") == kSecretsVolumeName; });
}

// The environment entries that read spec.secret_env from the workload's Secret (named <id>).
json SecretRefs(const WorkloadSpec& spec) {
  json refs = json::array();
  for (const auto& [key, value] : spec.secret_env) {
    refs.push_back(
        {{"name", key}, {"valueFrom", {{"secretKeyRef", {{"name", spec.id}, {"key", key}}}}}});
  }
  return refs;
}

// A service workload's role: a StatefulSet <id>-<role> of restart-always replicas (pods
// <id>-<role>-<ordinal>, reachable as such under the headless Service <id>), started in parallel.
json StatefulSetManifest(const WorkloadSpec& spec, const RoleSpec& role,
                         const std::string& namespace_, const std::string& default_image,
                         const std::string& kueue_queue) {
  const int port = ServicePort(role);
  std::map<std::string, std::string> env = spec.env;
  for (const auto& [k, v] : role.env) env[k] = v;
  env["SUBMARINE_WORKLOAD_ID"] = spec.id;
  env["SUBMARINE_TASK_ROLE"] = role.name;
  env["SUBMARINE_PORT"] = absl::StrCat(port);
  env["SUBMARINE_RUN_DIR"] = kRunDir;  // the prelude's (an environment value names the mount)
  if (!spec.secret_env.empty()) env["SUBMARINE_SECRETS_DIR"] = kSecretsMountPath;
  for (const char* set_by_the_prelude :
       {"SUBMARINE_TASK_INDEX", "SUBMARINE_TASK_ATTEMPT", "SUBMARINE_HOST", "SUBMARINE_POD_UID"}) {
    env.erase(set_by_the_prelude);
  }
  json env_list = json::array();
  for (const json& ref : SecretRefs(spec)) {
    if (!env.count(ref["name"].get<std::string>())) env_list.push_back(ref);
  }
  for (const auto& [k, v] : env) env_list.push_back({{"name", k}, {"value", v}});
  env_list.push_back(
      {{"name", "SUBMARINE_HOST"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}});
  env_list.push_back({{"name", "SUBMARINE_POD_UID"},
                      {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.uid"}}}}}});
  json command = {"/bin/sh", "-c", ServicePrelude(), "submarine-task"};
  for (const std::string& arg : role.command) command.push_back(arg);
  json container = {
      {"name", kContainer},
      {"image", role.image.empty() ? default_image : role.image},
      {"command", command},
      {"env", env_list},
      {"ports", json::array({{{"name", kServicePortName}, {"containerPort", port}}})},
      {"resources", ResourcesJson(role.resources)},
      {"volumeMounts", json::array({{{"name", "submarine-run"}, {"mountPath", kRunDir}}})}};
  if (role.readiness) {
    const int64_t ms = role.readiness->period.count();
    json probe = {{"periodSeconds", std::max<int64_t>(1, (ms + 999) / 1000)},
                  {"failureThreshold", 1}};
    if (role.readiness->http_path.empty()) {
      probe["tcpSocket"] = {{"port", port}};
    } else {
      probe["httpGet"] = {{"path", role.readiness->http_path}, {"port", port}};
    }
    container["readinessProbe"] = probe;
  }
  if (!spec.working_dir.empty()) container["workingDir"] = spec.working_dir;
  const json pod_labels = {
      {kManagedByLabel, kManagedBy}, {kWorkloadLabel, spec.id}, {kRoleLabel, role.name}};
  json set_labels = pod_labels;
  if (!kueue_queue.empty()) set_labels[kKueueQueueLabel] = kueue_queue;
  json pod_spec = {
      {"restartPolicy", "Always"},
      {"enableServiceLinks", false},
      {"terminationGracePeriodSeconds", 30},
      {"containers", json::array({container})},
      {"volumes", json::array({{{"name", "submarine-run"}, {"emptyDir", json::object()}}})}};
  MountSecrets(spec, pod_spec);
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata",
       {{"name", JobName(spec.id, role.name)}, {"namespace", namespace_}, {"labels", set_labels}}},
      {"spec",
       {{"replicas", role.replicas},
        {"serviceName", spec.id},
        {"podManagementPolicy", "Parallel"},
        {"selector", {{"matchLabels", {{kWorkloadLabel, spec.id}, {kRoleLabel, role.name}}}}},
        {"template", {{"metadata", {{"labels", pod_labels}}}, {"spec", pod_spec}}}}}};
}

// Writes a log or spec file (task_files.h: temp file, fsync, rename), making its directory.
absl::Status WriteArchiveFile(const std::string& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    return Unavailable(absl::StrCat("cannot create the directory of ", path, ": ", ec.message()));
  return local::WriteFileAtomically(path, data);
}

// The file's content; nullopt when it cannot be read (absent).
std::optional<std::string> ReadFileIfAny(const std::string& path) {
  auto text = local::ReadSmallFile(path);
  if (!text.ok()) return std::nullopt;
  return std::move(*text);
}

}  // namespace

// ---- Manifests ----

absl::StatusOr<std::vector<json>> KubernetesBackend::Manifests(const WorkloadSpec& spec,
                                                               const std::string& namespace_,
                                                               const std::string& default_image,
                                                               const trainjob::Runtimes* trainer,
                                                               const std::string& kueue_queue) {
  SUBMARINE_RETURN_IF_ERROR(ValidateForKubernetes(spec, default_image));
  const json labels = {{kManagedByLabel, kManagedBy}, {kWorkloadLabel, spec.id}};
  std::vector<json> out;
  out.push_back({{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", spec.id}, {"namespace", namespace_}, {"labels", labels}}},
                 {"data", {{kSpecKey, SpecToJson(spec).dump()}}}});
  if (spec.kind == WorkloadKind::kBatch && trainer != nullptr && trainjob::Fits(spec).ok()) {
    out[0]["metadata"]["annotations"] = {{kApiAnnotation, kTrainJobApi}};
    std::map<std::string, std::string> trainjob_labels = {{kManagedByLabel, kManagedBy},
                                                          {kWorkloadLabel, spec.id}};
    if (!kueue_queue.empty()) trainjob_labels[kKueueQueueLabel] = kueue_queue;
    out.push_back(trainjob::Manifest(spec, namespace_, default_image, *trainer, trainjob_labels,
                                     ResourcesJson(spec.roles.front().resources),
                                     SecretRefs(spec)));
    return out;
  }
  out.push_back({{"apiVersion", "v1"},
                 {"kind", "Service"},
                 {"metadata", {{"name", spec.id}, {"namespace", namespace_}, {"labels", labels}}},
                 {"spec",
                  {{"clusterIP", "None"},
                   {"selector", {{kWorkloadLabel, spec.id}}},
                   {"publishNotReadyAddresses", true}}}});

  if (spec.kind == WorkloadKind::kService) {
    for (const RoleSpec& role : spec.roles) {
      out.push_back(StatefulSetManifest(spec, role, namespace_, default_image, kueue_queue));
    }
    return out;
  }

  // Rendezvous on the pods' stable DNS names: <id>-<role>-<index>.<id>.
  const std::vector<TaskRef> ranked = RankOrder(spec);
  auto host = [&](const TaskRef& t) {
    return absl::StrCat(JobName(spec.id, t.role), "-", t.index, ".", spec.id);
  };
  json cluster = json::object();
  for (const TaskRef& t : TasksOf(spec)) {
    cluster[t.role].push_back(absl::StrCat(host(t), ":", kTensorflowPort));
  }
  for (const RoleSpec& role : spec.roles) {
    std::map<std::string, std::string> env = spec.env;
    for (const auto& [k, v] : role.env) env[k] = v;
    env["SUBMARINE_WORKLOAD_ID"] = spec.id;
    env["SUBMARINE_TASK_ROLE"] = role.name;
    if (!spec.secret_env.empty()) env["SUBMARINE_SECRETS_DIR"] = kSecretsMountPath;
    env.erase("SUBMARINE_TASK_INDEX");  // the prelude sets these two
    env.erase("SUBMARINE_TASK_ATTEMPT");
    const int offset = static_cast<int>(
        std::find(ranked.begin(), ranked.end(), TaskRef{role.name, 0}) - ranked.begin());
    switch (spec.framework) {
      case Framework::kPlain:
        break;
      case Framework::kTensorflow:
        env["SUBMARINE_TF_CLUSTER"] = cluster.dump();
        break;
      case Framework::kPytorch:
        env["MASTER_ADDR"] = host(ranked.front());
        env["MASTER_PORT"] = absl::StrCat(kPytorchPort);
        env["WORLD_SIZE"] = absl::StrCat(ranked.size());
        env["LOCAL_RANK"] = "0";
        env["LOCAL_WORLD_SIZE"] = "1";
        env["SUBMARINE_RANK_OFFSET"] = absl::StrCat(offset);
        break;
      case Framework::kXgboost:
        env["DMLC_TRACKER_URI"] = host(ranked.front());
        env["DMLC_TRACKER_PORT"] = absl::StrCat(kXgboostTrackerPort);
        env["DMLC_NUM_WORKER"] = absl::StrCat(ranked.size());
        env["DMLC_ROLE"] = "worker";
        env["SUBMARINE_RANK_OFFSET"] = absl::StrCat(offset);
        break;
    }
    json env_list = json::array();
    for (const json& ref : SecretRefs(spec)) {
      if (!env.count(ref["name"].get<std::string>())) env_list.push_back(ref);
    }
    for (const auto& [k, v] : env) env_list.push_back({{"name", k}, {"value", v}});
    env_list.push_back({{"name", "SUBMARINE_INDEX_FAILURES"},
                        {"valueFrom",
                         {{"fieldRef",
                           {{"fieldPath", absl::StrCat("metadata.annotations['",
                                                       kIndexFailuresAnnotation, "']")}}}}}});
    json command = {"/bin/sh", "-c", Prelude(spec.framework), "submarine-task"};
    for (const std::string& arg : role.command) command.push_back(arg);
    json container = {{"name", kContainer},
                      {"image", role.image.empty() ? default_image : role.image},
                      {"command", command},
                      {"env", env_list},
                      {"resources", ResourcesJson(role.resources)}};
    if (!spec.working_dir.empty()) container["workingDir"] = spec.working_dir;
    json pod_labels = labels;
    pod_labels[kRoleLabel] = role.name;
    json job_labels = pod_labels;
    if (!kueue_queue.empty()) job_labels[kKueueQueueLabel] = kueue_queue;
    json pod_spec = {{"restartPolicy", "Never"},
                     {"subdomain", spec.id},
                     {"enableServiceLinks", false},
                     {"terminationGracePeriodSeconds", 30},
                     {"containers", json::array({container})}};
    MountSecrets(spec, pod_spec);
    out.push_back({{"apiVersion", "batch/v1"},
                   {"kind", "Job"},
                   {"metadata",
                    {{"name", JobName(spec.id, role.name)},
                     {"namespace", namespace_},
                     {"labels", job_labels}}},
                   {"spec",
                    {{"completionMode", "Indexed"},
                     {"completions", role.replicas},
                     {"parallelism", role.replicas},
                     // Each replica is retried on its own; the first replica out of retries fails
                     // the Job (and the Job controller stops the others).
                     {"backoffLimitPerIndex", role.max_restarts},
                     {"maxFailedIndexes", 0},
                     {"template", {{"metadata", {{"labels", pod_labels}}}, {"spec", pod_spec}}}}}});
  }
  return out;
}

// ---- Construction ----

struct KubernetesBackend::Objects {
  json anchor;
  WorkloadSpec spec;
  bool on_trainer = false;           // runs as a TrainJob (else as Jobs)
  std::optional<json> trainjob;      // when on_trainer; absent = not found
  std::map<std::string, json> jobs;  // by role; absent = not found
  std::map<std::string, json> sets;  // kService: StatefulSets by role; absent = not found
  std::vector<json> pods;
};

KubernetesBackend::KubernetesBackend(Options options, std::unique_ptr<kube::Client> client)
    : options_(std::move(options)), client_(std::move(client)) {}

KubernetesBackend::~KubernetesBackend() {
  {
    std::lock_guard lock(usage_mu_);
    sampler_stop_ = true;
  }
  sampler_wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();  // first: it reads the informers
  if (anchors_) anchors_->Stop();
  if (jobs_) jobs_->Stop();
  if (pods_) pods_->Stop();
  if (sets_) sets_->Stop();
  if (trainjobs_) trainjobs_->Stop();
  if (trainer_pods_) trainer_pods_->Stop();
  if (kueue_) kueue_->Stop();
  std::unique_lock lock(mu_);
  followers_done_.wait(lock, [this] { return followers_running_ == 0; });
}

absl::StatusOr<std::unique_ptr<KubernetesBackend>> KubernetesBackend::Create(Options options) {
  if (options.logs_dir.empty()) return InvalidField("logs_dir", "is required");
  if (options.namespace_.empty()) options.namespace_ = options.cluster.namespace_;
  if (!ValidName(options.namespace_, 63)) {
    return InvalidField("namespace", absl::StrCat("\"", QuoteInput(options.namespace_),
                                                  "\" is not a Kubernetes namespace name"));
  }
  std::error_code ec;
  fs::create_directories(options.logs_dir, ec);
  if (ec) return Unavailable(absl::StrCat("cannot create ", options.logs_dir, ": ", ec.message()));
  SUBMARINE_ASSIGN_OR_RETURN(auto client, kube::Client::Create(options.cluster));
  std::unique_ptr<KubernetesBackend> backend(
      new KubernetesBackend(std::move(options), std::move(client)));
  SUBMARINE_RETURN_IF_ERROR(backend->Start());
  return backend;
}

std::string KubernetesBackend::Path(const std::string& plural, const std::string& name) const {
  std::string group = "/api/v1";
  if (plural == "jobs") group = "/apis/batch/v1";
  if (plural == "statefulsets") group = "/apis/apps/v1";
  if (plural == trainjob::kPlural) group = absl::StrCat("/apis/", trainjob::kGroupVersion);
  if (plural == "workloads") group = absl::StrCat("/apis/", kKueueGroupVersion);
  std::string path = absl::StrCat(group, "/namespaces/", options_.namespace_, "/", plural);
  if (!name.empty()) absl::StrAppend(&path, "/", name);
  return path;
}

absl::Status KubernetesBackend::Start() {
  const std::string selector = absl::StrCat(kManagedByLabel, "=", kManagedBy);
  // Anchors and TrainJobs are named after their workload; Jobs and pods carry its label.
  auto make = [&](const std::string& plural, const std::string& index,
                  const std::string& label_selector) {
    kube::Informer::Options o;
    o.collection_path = Path(plural);
    o.label_selector = label_selector;
    o.index_label = index;
    const IdFrom from = index.empty()                 ? IdFrom::kName
                        : index == kKueueJobNameLabel ? IdFrom::kIndexPrefixes
                                                      : IdFrom::kIndex;
    o.on_change = [this, from](const kube::Informer::Change& c) { Changed(c, from); };
    o.watch_timeout_seconds = options_.watch_timeout_seconds;
    auto informer = std::make_unique<kube::Informer>(client_.get(), std::move(o));
    informer->Start();
    return informer;
  };
  if (options_.use_trainer) {
    SUBMARINE_ASSIGN_OR_RETURN(bool served,
                               client_->Serves(trainjob::kGroupVersion, trainjob::kPlural));
    if (served) {
      trainjobs_ = make(trainjob::kPlural, "", selector);
      trainer_pods_ = make("pods", trainjob::kPodLabel, trainjob::kPodLabel);
    }
  }
  if (!options_.kueue_queue.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(bool served, client_->Serves(kKueueGroupVersion, "workloads"));
    if (!served) {
      return absl::FailedPreconditionError(
          absl::StrCat("kueue_queue is set but ", options_.cluster.server, " does not serve ",
                       kKueueGroupVersion, " workloads: is Kueue installed?"));
    }
    kueue_ = make("workloads", kKueueJobNameLabel, "");
  }
  anchors_ = make("configmaps", "", selector);
  jobs_ = make("jobs", kWorkloadLabel, selector);
  pods_ = make("pods", kWorkloadLabel, selector);
  SUBMARINE_ASSIGN_OR_RETURN(bool serves_sets, client_->Serves("apps/v1", "statefulsets"));
  if (serves_sets) sets_ = make("statefulsets", kWorkloadLabel, selector);
  for (kube::Informer* i : {anchors_.get(), jobs_.get(), pods_.get(), sets_.get(), trainjobs_.get(),
                            trainer_pods_.get(), kueue_.get()}) {
    if (i != nullptr && !i->WaitForSync(options_.sync_timeout)) {
      return Unavailable(absl::StrCat("cannot list the Submarine objects of namespace ",
                                      options_.namespace_, " on ", options_.cluster.server));
    }
  }
  if (options_.metrics_period.count() > 0) {
    // Its discovery of the metrics API included: a slow one never holds up the start.
    sampler_ = std::thread([this] { SampleLoop(); });
  }
  return absl::OkStatus();
}

std::string KubernetesBackend::LogDir(const std::string& id) const {
  return absl::StrCat(options_.logs_dir, "/", id);
}

// ---- Submit ----

absl::Status KubernetesBackend::Submit(const WorkloadSpec& spec) {
  SUBMARINE_ASSIGN_OR_RETURN(
      std::vector<json> manifests,
      Manifests(spec, options_.namespace_, options_.default_image,
                trainjobs_ ? &options_.runtimes : nullptr, options_.kueue_queue));
  if (anchors_->Get(spec.id)) return absl::OkStatus();  // the first spec wins
  // The Secret goes first (its values exist only here, in Submit): an anchor never exists
  // without it. CreateMissing makes the anchor its owner.
  if (!spec.secret_env.empty()) {
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata",
                    {{"name", spec.id},
                     {"namespace", options_.namespace_},
                     {"labels", {{kManagedByLabel, kManagedBy}, {kWorkloadLabel, spec.id}}}}},
                   {"type", "Opaque"},
                   {"stringData", spec.secret_env}};
    auto made = client_->Create(Path("secrets"), secret);
    if (absl::IsAlreadyExists(made.status())) {  // a Submit that stopped half-way: refresh it
      made = client_->MergePatch(Path("secrets", spec.id), {{"stringData", spec.secret_env}});
    }
    if (!made.ok()) return made.status();
  }
  auto created = client_->Create(Path("configmaps"), manifests[0]);
  if (absl::IsAlreadyExists(created.status())) return absl::OkStatus();
  if (!created.ok()) return created.status();
  anchors_->Apply(*created);
  {
    std::lock_guard lock(mu_);
    deleted_.erase(spec.id);
  }
  // Which tasks exist outlives the workload, for ReadLog after Delete(keep_logs).
  SUBMARINE_RETURN_IF_ERROR(
      WriteArchiveFile(absl::StrCat(LogDir(spec.id), "/", kSpecKey), SpecToJson(spec).dump()));
  return CreateMissing(spec, *created);
}

absl::Status KubernetesBackend::CreateMissing(const WorkloadSpec& spec, const json& anchor) {
  // The anchor decided the API when it was made; a backend restarted since keeps to it.
  const bool on_trainer = Annotation(anchor, kApiAnnotation) == kTrainJobApi;
  if (on_trainer && !trainjobs_) {
    return Unavailable(absl::StrCat("workload ", spec.id,
                                    " runs as a TrainJob, and the cluster no longer serves them"));
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      std::vector<json> manifests,
      Manifests(spec, options_.namespace_, options_.default_image,
                on_trainer ? &options_.runtimes : nullptr, options_.kueue_queue));
  const json owner = {{"apiVersion", "v1"},
                      {"kind", "ConfigMap"},
                      {"name", spec.id},
                      {"uid", Meta(anchor).value("uid", "")},
                      {"blockOwnerDeletion", true}};
  if (!spec.secret_env.empty()) {
    auto owned = client_->MergePatch(Path("secrets", spec.id),
                                     {{"metadata", {{"ownerReferences", json::array({owner})}}}});
    if (!owned.ok()) return owned.status();
  }
  for (size_t i = 1; i < manifests.size(); ++i) {
    json& m = manifests[i];
    m["metadata"]["ownerReferences"] = json::array({owner});
    const std::string kind = m["kind"];
    const std::string plural = kind == "Job"           ? "jobs"
                               : kind == "TrainJob"    ? trainjob::kPlural
                               : kind == "StatefulSet" ? "statefulsets"
                                                       : "services";
    if (kind == "StatefulSet" && !sets_) {
      return Unavailable(absl::StrCat("cannot run service workload ", spec.id, ": ",
                                      options_.cluster.server, " does not serve apps/v1"));
    }
    auto made = client_->Create(Path(plural), m);
    if (!made.ok() && !absl::IsAlreadyExists(made.status())) return made.status();
    if (made.ok() && kind == "Job") jobs_->Apply(*made);
    if (made.ok() && kind == "StatefulSet") sets_->Apply(*made);
    if (made.ok() && kind == "TrainJob") trainjobs_->Apply(*made);
  }
  auto marked =
      client_->MergePatch(Path("configmaps", spec.id),
                          {{"metadata", {{"annotations", {{kSubmittedAnnotation, "true"}}}}}});
  if (!marked.ok()) return marked.status();
  anchors_->Apply(*marked);
  return absl::OkStatus();
}

// ---- Observation ----

absl::StatusOr<KubernetesBackend::Objects> KubernetesBackend::Find(const std::string& id) {
  if (!ValidId(id)) return NotFound("workload", QuoteInput(id));
  {
    std::lock_guard lock(mu_);
    if (deleted_.count(id)) return NotFound("workload", id);
  }
  Objects o;
  std::optional<json> anchor = anchors_->Get(id);
  if (!anchor) {
    // Not seen yet (created by another replica a moment ago), or absent.
    auto got = client_->Get(Path("configmaps", id));
    if (absl::IsNotFound(got.status())) return NotFound("workload", id);
    if (!got.ok()) return got.status();
    if (Label(*got, kManagedByLabel) != kManagedBy) return NotFound("workload", id);
    anchors_->Apply(*got);
    anchor = std::move(*got);
  }
  o.anchor = std::move(*anchor);
  json spec = json::parse(o.anchor.value("data", json::object()).value(kSpecKey, ""), nullptr,
                          /*allow_exceptions=*/false);
  SUBMARINE_ASSIGN_OR_RETURN(o.spec, SpecFromJson(spec));
  o.on_trainer = Annotation(o.anchor, kApiAnnotation) == kTrainJobApi;
  if (o.on_trainer) {
    if (!trainjobs_) {
      return Unavailable(absl::StrCat(
          "workload ", id, " runs as a TrainJob, and the cluster no longer serves them"));
    }
    o.trainjob = trainjobs_->Get(id);
    o.pods = trainer_pods_->ByIndex(id);
  } else if (o.spec.kind == WorkloadKind::kService) {
    if (!sets_) {
      return Unavailable(absl::StrCat(
          "workload ", id, " runs as StatefulSets, and the cluster does not serve them"));
    }
    for (const RoleSpec& role : o.spec.roles) {
      if (auto set = sets_->Get(JobName(id, role.name))) o.sets[role.name] = std::move(*set);
    }
    o.pods = pods_->ByIndex(id);
  } else {
    for (const RoleSpec& role : o.spec.roles) {
      if (auto job = jobs_->Get(JobName(id, role.name))) o.jobs[role.name] = std::move(*job);
    }
    o.pods = pods_->ByIndex(id);
  }
  // Attempt order. creationTimestamp has whole seconds, so pods of quick retries tie; the Job
  // controller numbers an index's replacement pods (job-index-failure-count), which decides.
  auto order = [](const json& pod) {
    int64_t failures = 0;
    (void)absl::SimpleAtoi(Annotation(pod, kIndexFailuresAnnotation), &failures);
    return std::make_tuple(failures, Meta(pod).value("creationTimestamp", ""),
                           Meta(pod).value("name", ""));
  };
  std::sort(o.pods.begin(), o.pods.end(),
            [&](const json& a, const json& b) { return order(a) < order(b); });
  return o;
}

namespace {

// The container running the task: ours ("task"), or a Trainer runtime's ("node").
std::string ContainerOf(const json& pod) {
  return Label(pod, trainjob::kPodLabel).empty() ? kContainer : "node";
}

// The state of a pod's container: "waiting", "running" or "terminated", and its object.
std::pair<std::string, json> ContainerState(const json& pod) {
  for (const json& c :
       pod.value("status", json::object()).value("containerStatuses", json::array())) {
    if (c.value("name", "") != ContainerOf(pod)) continue;
    for (const char* s : {"terminated", "running", "waiting"}) {
      if (c.value("state", json::object()).contains(s)) return {s, c["state"][s]};
    }
  }
  return {"", json::object()};
}

// How often the kubelet restarted the task's container in its pod.
int RestartCount(const json& pod) {
  for (const json& c :
       pod.value("status", json::object()).value("containerStatuses", json::array())) {
    if (c.value("name", "") == ContainerOf(pod)) return c.value("restartCount", 0);
  }
  return 0;
}

bool Ended(const json& pod) {
  const std::string phase = pod.value("status", json::object()).value("phase", "");
  return phase == "Succeeded" || phase == "Failed" || ContainerState(pod).first == "terminated";
}

int IndexOf(const json& pod) {
  std::string v = Annotation(pod, kIndexAnnotation);
  if (v.empty()) v = Label(pod, kIndexAnnotation);
  if (v.empty()) v = Label(pod, kPodIndexLabel);  // a StatefulSet's pod (Kubernetes 1.28+)
  if (v.empty()) {                                // ... or its name, <set>-<ordinal>
    const std::string name = Meta(pod).value("name", "");
    v = name.substr(name.rfind('-') + 1);
  }
  int index = -1;
  return absl::SimpleAtoi(v, &index) ? index : -1;
}

}  // namespace

std::optional<TaskRef> KubernetesBackend::PodTask(const Objects& o, const json& pod) {
  if (o.on_trainer) return trainjob::TaskOfPod(o.spec, pod);
  return TaskRef{Label(pod, kRoleLabel), IndexOf(pod)};
}

absl::StatusOr<WorkloadStatus> KubernetesBackend::Observe(const std::string& id, Objects o) {
  WorkloadStatus out;
  out.id = id;
  out.labels = o.spec.labels;
  const std::string final_text = Annotation(o.anchor, kFinalAnnotation);
  if (!final_text.empty()) {
    json f = json::parse(final_text, nullptr, /*allow_exceptions=*/false);
    if (f.is_object()) {
      out.phase = static_cast<Phase>(f.value("phase", 0));
      out.message = f.value("message", "");
      for (const json& t : f.value("tasks", json::array())) out.tasks.push_back(TaskFromJson(t));
      return out;
    }
  }
  const bool stopping = !Annotation(o.anchor, kStopAnnotation).empty();
  const bool submitted = Annotation(o.anchor, kSubmittedAnnotation) == "true";
  if (!submitted && !stopping) {
    // Submit stopped between the anchor and the rest (a crash, an API error): finish it.
    SUBMARINE_RETURN_IF_ERROR(CreateMissing(o.spec, o.anchor));
    SUBMARINE_ASSIGN_OR_RETURN(o, Find(id));
  }
  if (o.spec.kind == WorkloadKind::kService) return ObserveService(id, std::move(o), stopping);

  std::string missing_job;  // "Job x" or "TrainJob x", deleted behind our back
  if (o.on_trainer && !o.trainjob && !stopping) {
    auto got = client_->Get(Path(trainjob::kPlural, id));
    if (got.ok()) {
      trainjobs_->Apply(*got);
      o.trainjob = std::move(*got);
    } else if (absl::IsNotFound(got.status())) {
      missing_job = absl::StrCat("TrainJob ", id);
    } else {
      return got.status();
    }
  }
  for (const RoleSpec& role : o.spec.roles) {
    if (o.on_trainer || o.jobs.count(role.name) || stopping) continue;
    auto job = client_->Get(Path("jobs", JobName(id, role.name)));
    if (job.ok()) {
      jobs_->Apply(*job);
      o.jobs[role.name] = std::move(*job);
    } else if (absl::IsNotFound(job.status())) {
      missing_job = absl::StrCat("Job ", JobName(id, role.name));
    } else {
      return job.status();
    }
  }
  const trainjob::Observed trainer =
      o.trainjob ? trainjob::Observe(*o.trainjob) : trainjob::Observed{};
  bool a_job_failed = trainer.failed;
  for (const auto& [role, job] : o.jobs) {
    a_job_failed =
        a_job_failed || HasCondition(job, "Failed") || HasCondition(job, "FailureTarget");
  }
  if (a_job_failed && !stopping) {
    // A Job (or TrainJob) and its pods come through separate watches: its Failed condition may
    // arrive before the pod whose exit caused it. Read the pods that look alive from the API
    // server, so the verdict names the task and its exit code, not only the Job's summary.
    kube::Informer& informer = o.on_trainer ? *trainer_pods_ : *pods_;
    for (json& pod : o.pods) {
      if (Ended(pod)) continue;
      auto fresh = client_->Get(Path("pods", Meta(pod).value("name", "")));
      if (!fresh.ok()) continue;  // gone or unreadable: judged as the watch last saw it
      informer.Apply(*fresh);
      pod = std::move(*fresh);
    }
  }

  std::map<std::pair<std::string, int>, std::vector<const json*>> attempts;
  for (const json& pod : o.pods) {
    if (auto task = PodTask(o, pod)) attempts[{task->role, task->index}].push_back(&pod);
  }
  std::vector<const json*> live;  // pods that still run (or may start)
  bool any_failed = false, all_succeeded = true, all_final = true, any_started = false;
  std::string failing_job;  // a Job that fails without a task that failed (deadline, deletion)
  for (const TaskRef& ref : TasksOf(o.spec)) {
    TaskStatus t;
    t.task = ref;
    const auto& pods = attempts[{ref.role, ref.index}];
    auto job = o.jobs.find(ref.role);
    // Kubernetes 1.31+ says FailureTarget as soon as it decides, Failed once the pods are gone.
    // A TrainJob fails as a whole (its JobSet's failure policy decides).
    // Stopping a TrainJob fails it (its pods are deleted), which is not the workload's failure.
    const bool job_failing =
        o.on_trainer ? trainer.failed && !stopping
                     : job != o.jobs.end() && (HasCondition(job->second, "Failed") ||
                                               HasCondition(job->second, "FailureTarget"));
    const bool job_missing = o.on_trainer ? !o.trainjob : job == o.jobs.end();
    int max_restarts = 0;
    for (const RoleSpec& role : o.spec.roles) {
      if (role.name == ref.role) max_restarts = role.max_restarts;
    }
    const char* kStoppedByJob = "stopped: another replica of its role failed";
    if (pods.empty()) {
      t.phase = stopping || job_failing ? Phase::kKilled : Phase::kPending;
      if (job_failing) t.message = kStoppedByJob;
      if (stopping) t.message = "stopped on request";
    } else {
      const json& pod = *pods.back();
      t.attempt = static_cast<int>(pods.size());
      const json& status = pod.value("status", json::object());
      t.host = pod.value("spec", json::object()).value("nodeName", status.value("hostIP", ""));
      auto [state, detail] = ContainerState(pod);
      if (detail.contains("startedAt")) t.start_time = ParseTime(detail["startedAt"]);
      const std::string phase = status.value("phase", "");
      if (state == "terminated" || phase == "Succeeded" || phase == "Failed") {
        if (detail.contains("finishedAt")) t.finish_time = ParseTime(detail["finishedAt"]);
        if (detail.contains("exitCode") && detail["exitCode"].is_number()) {
          t.exit_code = detail["exitCode"].get<int>();
        }
        if (detail.contains("signal") && detail["signal"].is_number()) {
          t.signal = detail["signal"].get<int>();
        }
        const bool succeeded = phase == "Succeeded" || (t.exit_code && *t.exit_code == 0);
        // Deleted while it ran: stopped by us or by its failing Job, not failed by itself.
        const bool deleted = !Meta(pod).value("deletionTimestamp", "").empty();
        // A TrainJob's runtime decides about retries; its Failed condition says they are over.
        const bool exhausted = !o.on_trainer && static_cast<int>(pods.size()) > max_restarts;
        if (succeeded) {
          t.phase = Phase::kSucceeded;
        } else if (deleted) {
          // Deleted while it ran: stopped by us, by its failing Job or by someone else.
          t.phase = Phase::kKilled;
          t.message = stopping      ? "stopped on request"
                      : job_failing ? kStoppedByJob
                                    : "its pod was deleted";
        } else if (exhausted || job_failing || job_missing) {
          // It failed by itself (a stop deletes what runs), even if a stop came after.
          t.phase = Phase::kFailed;
          std::string why = t.exit_code ? absl::StrCat("exit code ", *t.exit_code)
                                        : std::string("the container ended");
          const std::string reason = detail.value("reason", "");
          if (!reason.empty() && reason != "Error") absl::StrAppend(&why, " (", reason, ")");
          const std::string message = detail.value("message", status.value("message", ""));
          if (!message.empty()) absl::StrAppend(&why, ": ", message.substr(0, 200));
          t.message = why;
        } else if (stopping) {
          t.phase = Phase::kKilled;  // it would have been restarted
          t.message = "stopped on request";
        } else {
          t.phase = Phase::kPending;  // the Job controller starts another attempt
          t.message = "restarting after a failed attempt";
        }
      } else {
        t.phase = state == "running" || phase == "Running" ? Phase::kRunning : Phase::kPending;
        live.push_back(&pod);
      }
    }
    if (t.phase != Phase::kPending) any_started = true;
    if (!IsFinal(t.phase)) all_final = false;
    if (t.phase != Phase::kSucceeded) all_succeeded = false;
    if (t.phase == Phase::kFailed) any_failed = true;
    if (job_failing && failing_job.empty() && o.on_trainer) {
      failing_job = absl::StrCat("its TrainJob ", id, " failed: ", trainer.message);
    } else if (job_failing && failing_job.empty()) {
      for (const json& c :
           job->second.value("status", json::object()).value("conditions", json::array())) {
        if (c.value("status", "") == "True" &&
            (c.value("type", "") == "Failed" || c.value("type", "") == "FailureTarget")) {
          failing_job =
              absl::StrCat("its Kubernetes Job ", JobName(id, ref.role),
                           " failed: ", c.value("reason", ""), " ", c.value("message", ""));
        }
      }
    }
    if (!pods.empty()) t.usage = UsageOf(id, pods, t.phase == Phase::kRunning);
    out.tasks.push_back(std::move(t));
  }
  if (any_failed) {
    out.phase = Phase::kFailed;
    // The first to fail is the cause; the others may have failed of it.
    const TaskStatus* first = nullptr;
    for (const TaskStatus& t : out.tasks) {
      if (t.phase != Phase::kFailed) continue;
      if (first == nullptr ||
          (t.finish_time && (!first->finish_time || *t.finish_time < *first->finish_time))) {
        first = &t;
      }
    }
    out.message = absl::StrCat("task ", TaskName(first->task), " failed: ", first->message);
  } else if (!failing_job.empty()) {
    out.phase = Phase::kFailed;
    out.message = failing_job;
  } else if (!missing_job.empty()) {
    out.phase = Phase::kFailed;
    out.message = absl::StrCat("its Kubernetes ", missing_job, " was deleted outside Submarine");
  } else if (all_succeeded || (trainer.complete && all_final)) {
    out.phase = Phase::kSucceeded;
  } else if (stopping && all_final) {
    out.phase = Phase::kKilled;
    out.message = "stopped on request";
  } else if (any_started) {
    out.phase = Phase::kRunning;
  } else {
    out.phase = Phase::kPending;
    out.message = KueueReason(o);
    if (out.message.empty() && trainer.suspended) {
      out.message = absl::StrCat("TrainJob suspended: ", trainer.message);
    }
  }

  if (IsFinal(out.phase) && !live.empty()) {
    // A failed task (or a vanished Job) ends the workload: stop what still runs.
    if (!stopping) {
      auto marked = client_->MergePatch(
          Path("configmaps", id),
          {{"metadata",
            {{"annotations",
              {{kStopAnnotation,
                absl::StrCat(std::chrono::milliseconds(kFailureGrace).count())}}}}}});
      if (marked.ok()) anchors_->Apply(*marked);
    }
    SUBMARINE_RETURN_IF_ERROR(StopObjects(id, o, kFailureGrace));
    return out;  // final once the rest has ended
  }
  if (stopping && !live.empty()) {
    // A pod the Job controller made just before the stop: stop it too.
    std::chrono::milliseconds grace(30000);
    int64_t ms = 0;
    if (absl::SimpleAtoi(Annotation(o.anchor, kStopAnnotation), &ms)) {
      grace = std::chrono::milliseconds(ms);
    }
    SUBMARINE_RETURN_IF_ERROR(StopObjects(id, o, grace));
  }
  if (!IsFinal(out.phase) || !all_final) return out;
  if (FollowingLogsOf(id)) {
    // A stopped pod's log is still being read to its end; final once it is kept.
    out.phase = Phase::kRunning;
    out.message = "ending: keeping its logs";
    return out;
  }

  // Final: archive every attempt's log, then record the verdict on the anchor so that it
  // outlives the pods.
  for (const auto& [task, pods] : attempts) {
    for (size_t a = 0; a < pods.size(); ++a) {
      SUBMARINE_RETURN_IF_ERROR(
          Archive(id, {task.first, task.second}, *pods[a], static_cast<int>(a) + 1, false));
    }
  }
  json tasks = json::array();
  for (const TaskStatus& t : out.tasks) tasks.push_back(TaskToJson(t));
  json verdict = {
      {"phase", static_cast<int>(out.phase)}, {"message", out.message}, {"tasks", tasks}};
  auto recorded =
      client_->MergePatch(Path("configmaps", id),
                          {{"metadata", {{"annotations", {{kFinalAnnotation, verdict.dump()}}}}}});
  if (!recorded.ok()) return recorded.status();
  anchors_->Apply(*recorded);
  if (o.trainjob) {
    // The verdict and logs are kept; a suspended TrainJob must not be resumed by anyone.
    absl::Status s = client_->Delete(Path(trainjob::kPlural, id), "Background");
    if (!s.ok() && !absl::IsNotFound(s)) {
      log::Get("compute")->warn("{}: deleting its ended TrainJob: {}", id, Message(s));
    }
    trainjobs_->Forget(id);
  }
  return out;
}

// ---- Service workloads ----

namespace {

// The replicas each role of a service workload runs: the anchor's record of the last Scale,
// else the spec's.
std::map<std::string, int> DesiredReplicas(const WorkloadSpec& spec, const json& anchor) {
  std::map<std::string, int> out;
  for (const RoleSpec& role : spec.roles) out[role.name] = role.replicas;
  const json scaled =
      json::parse(Annotation(anchor, kReplicasAnnotation), nullptr, /*allow_exceptions=*/false);
  if (!scaled.is_object()) return out;
  for (auto& [role, n] : out) {
    auto it = scaled.find(role);
    if (it != scaled.end() && it->is_number_integer()) n = it->get<int>();
  }
  return out;
}

std::string StringAt(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

bool ContainerReady(const json& pod) {
  for (const json& c :
       pod.value("status", json::object()).value("containerStatuses", json::array())) {
    if (c.value("name", "") == ContainerOf(pod)) return c.value("ready", false);
  }
  return false;
}

// The container's last ended run, while it waits to be started again.
json LastTerminated(const json& pod) {
  for (const json& c :
       pod.value("status", json::object()).value("containerStatuses", json::array())) {
    if (c.value("name", "") != ContainerOf(pod)) continue;
    return c.value("lastState", json::object()).value("terminated", json::object());
  }
  return json::object();
}

// A container's end in words: "exit code 1", "signal 9".
std::string EndOf(const json& terminated) {
  if (terminated.contains("signal") && terminated["signal"].is_number()) {
    return absl::StrCat("signal ", terminated["signal"].get<int>());
  }
  if (terminated.contains("exitCode") && terminated["exitCode"].is_number()) {
    return absl::StrCat("exit code ", terminated["exitCode"].get<int>());
  }
  return "its container ended";
}

}  // namespace

std::string KubernetesBackend::NotReadyReason(const json& pod, const std::string& http_path) {
  constexpr char kWaiting[] = "not ready: waiting for its readiness probe to pass";
  const std::string uid = Meta(pod).value("uid", "");
  auto events = client_->Get(absl::StrCat(Path("events"), "?fieldSelector=involvedObject.uid%3D",
                                          uid, "%2Creason%3DUnhealthy"));
  if (!events.ok()) return kWaiting;
  std::string latest, latest_time;
  for (const json& e : events->value("items", json::array())) {
    std::string when = StringAt(e, "lastTimestamp");
    if (when.empty()) when = StringAt(e, "eventTime");
    const std::string message = StringAt(e, "message");
    if (!absl::StartsWith(message, "Readiness probe") || when < latest_time) continue;
    latest_time = when;
    latest = message;
  }
  if (latest.empty()) return kWaiting;
  // The kubelet's words, e.g. "Readiness probe failed: HTTP probe failed with statuscode: 404".
  std::string why = latest;
  for (const char* prefix : {"Readiness probe failed: ", "Readiness probe errored: "}) {
    if (absl::StartsWith(why, prefix)) why = why.substr(strlen(prefix));
  }
  constexpr char kHttpStatus[] = "HTTP probe failed with statuscode: ";
  if (absl::StartsWith(why, kHttpStatus)) {
    why = absl::StrCat("GET ", http_path, ": HTTP ", why.substr(strlen(kHttpStatus)));
  }
  return absl::StrCat("not ready: ", why);
}

absl::StatusOr<WorkloadStatus> KubernetesBackend::ObserveService(const std::string& id, Objects o,
                                                                 bool stopping) {
  WorkloadStatus out;
  out.id = id;
  out.labels = o.spec.labels;
  const std::map<std::string, int> desired = DesiredReplicas(o.spec, o.anchor);
  std::string failure = Annotation(o.anchor, kFailureAnnotation);
  if (!stopping) {
    for (const RoleSpec& role : o.spec.roles) {
      const std::string name = JobName(id, role.name);
      if (!o.sets.count(role.name)) {
        auto got = client_->Get(Path("statefulsets", name));
        if (absl::IsNotFound(got.status())) {
          failure =
              absl::StrCat("its Kubernetes StatefulSet ", name, " was deleted outside Submarine");
          continue;
        }
        if (!got.ok()) return got.status();
        sets_->Apply(*got);
        o.sets[role.name] = std::move(*got);
      }
      // A Scale that stopped between the anchor and the StatefulSet: finish it.
      const int want = desired.at(role.name);
      if (o.sets[role.name].value("spec", json::object()).value("replicas", 1) != want) {
        auto scaled =
            client_->MergePatch(Path("statefulsets", name), {{"spec", {{"replicas", want}}}});
        if (!scaled.ok() && !absl::IsNotFound(scaled.status())) return scaled.status();
        if (scaled.ok()) sets_->Apply(*scaled);
      }
    }
    if (!failure.empty()) {
      // Stop the rest, remembering why: the workload fails once they are gone.
      SUBMARINE_ASSIGN_OR_RETURN(
          json marked,
          client_->MergePatch(
              Path("configmaps", id),
              {{"metadata",
                {{"annotations",
                  {{kFailureAnnotation, failure},
                   {kStopAnnotation,
                    absl::StrCat(std::chrono::milliseconds(kFailureGrace).count())}}}}}}));
      anchors_->Apply(marked);
      o.anchor = std::move(marked);
      stopping = true;
    }
  }

  // The newest pod of each (role, ordinal): o.pods is in creation order.
  std::map<std::pair<std::string, int>, const json*> newest;
  for (const json& pod : o.pods) {
    std::optional<TaskRef> task = PodTask(o, pod);
    if (task && task->index >= 0) newest[{task->role, task->index}] = &pod;
  }
  std::vector<const json*> live;
  bool any_running = false;
  for (const RoleSpec& role : o.spec.roles) {
    int n = desired.at(role.name);
    if (stopping) {  // every replica there was, until its pod is gone
      for (const auto& [key, pod] : newest) {
        if (key.first == role.name) n = std::max(n, key.second + 1);
      }
    }
    for (int index = 0; index < n; ++index) {
      TaskStatus t;
      t.task = {role.name, index};
      auto it = newest.find({role.name, index});
      if (it == newest.end()) {
        t.phase = stopping ? Phase::kKilled : Phase::kPending;
        t.message = stopping ? "stopped on request" : "waiting for its pod";
        out.tasks.push_back(std::move(t));
        continue;
      }
      const json& pod = *it->second;
      const json& status = pod.value("status", json::object());
      const int restarts = RestartCount(pod);
      t.attempt = restarts + 1;
      t.host = pod.value("spec", json::object()).value("nodeName", StringAt(status, "hostIP"));
      auto [state, detail] = ContainerState(pod);
      if (detail.contains("startedAt")) t.start_time = ParseTime(detail["startedAt"]);
      if (restarts >= 1) {
        // The container ran before: keep that run's log (the kubelet keeps only one previous).
        const std::string file =
            absl::StrCat(LogDir(id), "/", TaskName(t.task), "/", restarts, ".log");
        if (!fs::exists(file)) {
          auto text =
              client_->GetText(absl::StrCat(Path("pods", Meta(pod).value("name", "")),
                                            "/log?container=", kContainer, "&previous=true"));
          if (text.ok()) {
            SUBMARINE_RETURN_IF_ERROR(WriteArchiveFile(file, *text));
          } else if (!absl::IsInvalidArgument(text.status()) && !absl::IsNotFound(text.status())) {
            return text.status();
          }
        }
      }
      if (Ended(pod)) {
        // A restart-always container ends for good only when its pod is deleted.
        if (detail.contains("finishedAt")) t.finish_time = ParseTime(detail["finishedAt"]);
        if (detail.contains("exitCode") && detail["exitCode"].is_number()) {
          t.exit_code = detail["exitCode"].get<int>();
        }
        if (detail.contains("signal") && detail["signal"].is_number()) {
          t.signal = detail["signal"].get<int>();
        }
        t.phase = stopping ? Phase::kKilled : Phase::kPending;
        t.message = stopping ? "stopped on request" : absl::StrCat("ended: ", EndOf(detail));
      } else if (state == "running") {
        t.phase = Phase::kRunning;
        any_running = true;
        t.ready = ContainerReady(pod);
        const std::string ip = StringAt(status, "podIP");
        if (!ip.empty()) t.endpoint = absl::StrCat(ip, ":", ServicePort(role));
        if (!t.ready) {
          t.message = role.readiness ? NotReadyReason(pod, role.readiness->http_path) : "not ready";
        }
        live.push_back(&pod);
      } else {
        // Being created, or waiting to be started again after it ended.
        t.phase = Phase::kPending;
        const json last = LastTerminated(pod);
        const std::string reason = detail.value("reason", "");
        t.message = !last.empty()
                        ? absl::StrCat("restarting after ", EndOf(last),
                                       reason.empty() ? "" : absl::StrCat(" (", reason, ")"))
                        : reason;
        live.push_back(&pod);
      }
      t.usage = UsageOf(id, {&pod}, t.phase == Phase::kRunning);
      out.tasks.push_back(std::move(t));
    }
  }

  const bool started = Annotation(o.anchor, kStartedAnnotation) == "true";
  if (!stopping) {
    if (any_running && !started) {
      SUBMARINE_ASSIGN_OR_RETURN(
          json marked,
          client_->MergePatch(Path("configmaps", id),
                              {{"metadata", {{"annotations", {{kStartedAnnotation, "true"}}}}}}));
      anchors_->Apply(marked);
    }
    out.phase = any_running || started ? Phase::kRunning : Phase::kPending;
    return out;
  }
  if (!live.empty() || FollowingLogsOf(id)) {
    // Stopping: a pod made just before the stop is stopped too; final once every pod is gone
    // and its log kept.
    std::chrono::milliseconds grace(30000);
    int64_t ms = 0;
    if (absl::SimpleAtoi(Annotation(o.anchor, kStopAnnotation), &ms)) {
      grace = std::chrono::milliseconds(ms);
    }
    if (!live.empty()) SUBMARINE_RETURN_IF_ERROR(StopObjects(id, o, grace));
    out.phase = started ? Phase::kRunning : Phase::kPending;
    out.message = "stopping";
    return out;
  }
  for (const auto& [task, pod] : newest) {
    SUBMARINE_RETURN_IF_ERROR(
        Archive(id, {task.first, task.second}, *pod, RestartCount(*pod) + 1, false));
  }
  out.phase = failure.empty() ? Phase::kKilled : Phase::kFailed;
  out.message = failure.empty() ? "stopped on request" : failure;
  json tasks = json::array();
  for (const TaskStatus& t : out.tasks) tasks.push_back(TaskToJson(t));
  json verdict = {
      {"phase", static_cast<int>(out.phase)}, {"message", out.message}, {"tasks", tasks}};
  SUBMARINE_ASSIGN_OR_RETURN(
      json recorded,
      client_->MergePatch(Path("configmaps", id),
                          {{"metadata", {{"annotations", {{kFinalAnnotation, verdict.dump()}}}}}}));
  anchors_->Apply(recorded);
  return out;
}

absl::Status KubernetesBackend::Scale(const std::string& id, const std::string& role, int replicas,
                                      std::chrono::milliseconds grace) {
  if (replicas < 0 || replicas > kMaxReplicas) {
    return InvalidField("replicas", absl::StrCat("must be 0 to ", kMaxReplicas));
  }
  SUBMARINE_ASSIGN_OR_RETURN(Objects o, Find(id));
  if (o.spec.kind != WorkloadKind::kService) {
    return absl::FailedPreconditionError(
        absl::StrCat("workload ", id, " is a batch workload: only services scale"));
  }
  if (std::none_of(o.spec.roles.begin(), o.spec.roles.end(),
                   [&](const RoleSpec& r) { return r.name == role; })) {
    return NotFound("role", absl::StrCat(id, "/", QuoteInput(role)));
  }
  if (!Annotation(o.anchor, kStopAnnotation).empty() ||
      !Annotation(o.anchor, kFinalAnnotation).empty()) {
    return absl::FailedPreconditionError(absl::StrCat("workload ", id, " is stopped"));
  }
  std::map<std::string, int> desired = DesiredReplicas(o.spec, o.anchor);
  desired[role] = replicas;
  // The anchor first: a restarted backend finishes what this call leaves half-done.
  SUBMARINE_ASSIGN_OR_RETURN(
      json marked,
      client_->MergePatch(
          Path("configmaps", id),
          {{"metadata", {{"annotations", {{kReplicasAnnotation, json(desired).dump()}}}}}}));
  anchors_->Apply(marked);
  // The replicas going away: what they write until they end is kept.
  std::vector<std::string> removed;
  for (const json& pod : o.pods) {
    std::optional<TaskRef> task = PodTask(o, pod);
    if (!task || task->role != role || task->index < replicas || Ended(pod) ||
        !Meta(pod).value("deletionTimestamp", "").empty()) {
      continue;
    }
    const int attempt = RestartCount(pod) + 1;
    SUBMARINE_RETURN_IF_ERROR(Archive(id, *task, pod, attempt, /*follow=*/false));
    ArchiveInBackground(id, *task, pod, attempt, grace);
    removed.push_back(Meta(pod).value("name", ""));
  }
  SUBMARINE_ASSIGN_OR_RETURN(json scaled,
                             client_->MergePatch(Path("statefulsets", JobName(id, role)),
                                                 {{"spec", {{"replicas", replicas}}}}));
  sets_->Apply(scaled);
  // The StatefulSet controller would give them the pods' own grace period: this one instead.
  const int64_t seconds = std::max<int64_t>(1, (grace.count() + 999) / 1000);
  for (const std::string& name : removed) {
    absl::Status s = client_->Delete(Path("pods", name), "Background", seconds);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return absl::OkStatus();
}

bool KubernetesBackend::UpdatesSecretsOf(const WorkloadSpec& spec) const {
  // A TrainJob's pods are made by the Trainer from its runtime: they do not mount the Secret.
  return !(spec.kind == WorkloadKind::kBatch && trainjobs_ && trainjob::Fits(spec).ok());
}

absl::Status KubernetesBackend::UpdateSecrets(const std::string& id,
                                              const std::map<std::string, std::string>& values) {
  SUBMARINE_ASSIGN_OR_RETURN(Objects o, Find(id));
  // The stored spec names its secret keys (never their values).
  for (const auto& [key, value] : values) {
    if (!o.spec.secret_env.count(key)) {
      return InvalidField("secret_env", absl::StrCat("workload ", id, " has no secret \"",
                                                     QuoteInput(key), "\" to update"));
    }
  }
  if (o.on_trainer) {
    return absl::FailedPreconditionError(
        absl::StrCat("workload ", id, " runs as a TrainJob, whose pods do not mount its secrets"));
  }
  for (const auto* objects : {&o.jobs, &o.sets}) {
    for (const auto& [role, object] : *objects) {
      if (!MountsSecrets(object)) {
        return absl::FailedPreconditionError(
            absl::StrCat("workload ", id, " was submitted before secrets could be updated"));
      }
    }
  }
  // Pods that start later (a restart, a replica added by Scale) read the new values too.
  return client_->MergePatch(Path("secrets", id), {{"stringData", values}}).status();
}

absl::StatusOr<WorkloadStatus> KubernetesBackend::Get(const std::string& id) {
  SUBMARINE_ASSIGN_OR_RETURN(Objects o, Find(id));
  return Observe(id, std::move(o));
}

void KubernetesBackend::Changed(const kube::Informer::Change& change, IdFrom from) {
  std::function<void()> notify;
  {
    std::lock_guard lock(observed_mu_);
    if (change.everything) everything_dirty_ = true;
    if (from == IdFrom::kName && !change.name.empty()) dirty_.insert(change.name);
    if (from != IdFrom::kName) {
      for (const std::string* value : {&change.index_before, &change.index_after}) {
        if (value->empty()) continue;
        dirty_.insert(*value);
        if (from != IdFrom::kIndexPrefixes) continue;
        for (size_t dash = value->find('-'); dash != std::string::npos;
             dash = value->find('-', dash + 1)) {
          dirty_.insert(value->substr(0, dash));
        }
      }
    }
    notify = notify_;
  }
  if (notify) notify();
}

std::string KubernetesBackend::KueueReason(const Objects& o) const {
  if (!kueue_) return "";
  std::vector<std::string> names;
  if (o.on_trainer) {
    names.push_back(o.spec.id);
  } else {
    for (const RoleSpec& role : o.spec.roles) names.push_back(JobName(o.spec.id, role.name));
  }
  for (const std::string& name : names) {
    for (const json& workload : kueue_->ByIndex(name)) {
      const json listed =
          workload.value("status", json::object()).value("conditions", json::array());
      std::map<std::string, const json*> conditions;
      for (const json& c : listed) conditions[c.value("type", "")] = &c;
      auto is_true = [&](const char* type) {
        auto it = conditions.find(type);
        return it != conditions.end() && it->second->value("status", "") == "True";
      };
      auto why = [&](const char* type) {
        auto it = conditions.find(type);
        if (it == conditions.end()) return std::string();
        return absl::StrCat(it->second->value("reason", ""), ": ",
                            it->second->value("message", ""));
      };
      const std::string queue =
          workload.value("spec", json::object()).value("queueName", options_.kueue_queue);
      if (is_true("Evicted")) return absl::StrCat("evicted by Kueue (", why("Evicted"), ")");
      if (is_true("Preempted")) return absl::StrCat("preempted by Kueue (", why("Preempted"), ")");
      if (!is_true("QuotaReserved")) {
        const std::string detail = why("QuotaReserved");
        return absl::StrCat("waiting for quota in Kueue queue ", queue,
                            detail.empty() ? "" : absl::StrCat(" (", detail, ")"));
      }
      if (!is_true("Admitted")) {
        return absl::StrCat("quota reserved in Kueue queue ", queue, ", waiting for admission");
      }
    }
  }
  return "";
}

void KubernetesBackend::OnChange(std::function<void()> notify) {
  std::lock_guard lock(observed_mu_);
  notify_ = std::move(notify);
}

absl::StatusOr<std::vector<WorkloadStatus>> KubernetesBackend::List() {
  std::set<std::string> dirty;
  bool everything = false;
  {
    std::lock_guard lock(observed_mu_);
    dirty.swap(dirty_);
    everything = std::exchange(everything_dirty_, false);
  }
  std::vector<WorkloadStatus> out;
  const std::vector<std::string> ids = anchors_->Names();
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    if (!everything && !dirty.count(id)) {
      std::lock_guard lock(observed_mu_);
      auto it = observed_.find(id);
      if (it != observed_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    auto s = Get(id);
    std::lock_guard lock(observed_mu_);
    if (absl::IsNotFound(s.status())) {  // deleted meanwhile
      observed_.erase(id);
      continue;
    }
    if (!s.ok()) {
      // Observe these again next time.
      dirty_.insert(dirty.begin(), dirty.end());
      everything_dirty_ = everything_dirty_ || everything;
      dirty_.insert(id);
      return s.status();
    }
    observed_[id] = *s;
    out.push_back(std::move(*s));
  }
  std::lock_guard lock(observed_mu_);
  if (everything) {
    const std::set<std::string> present(ids.begin(), ids.end());
    std::erase_if(observed_, [&](const auto& entry) { return !present.count(entry.first); });
  } else {
    for (const std::string& id : dirty) {
      if (!std::binary_search(ids.begin(), ids.end(), id)) observed_.erase(id);
    }
  }
  return out;
}

// ---- System metrics ----

void KubernetesBackend::SampleLoop() {
  std::unique_lock lock(usage_mu_);
  while (!sampler_stop_) {
    lock.unlock();
    const bool served = SampleMetrics();
    lock.lock();
    if (!served) return;
    sampler_wake_.wait_for(lock, options_.metrics_period, [this] { return sampler_stop_; });
  }
}

bool KubernetesBackend::SampleMetrics() {
  bool discovered = false;
  {
    std::lock_guard lock(usage_mu_);
    discovered = metrics_discovered_;
  }
  if (!discovered) {
    auto served = client_->Serves(kMetricsGroupVersion, "pods");
    std::lock_guard lock(usage_mu_);
    if (!served.ok()) {  // tried again next period
      if (!metrics_failing_) {
        log::Get("compute")->warn("cannot tell whether {} serves {} (tried again): {}",
                                  options_.cluster.server, kMetricsGroupVersion,
                                  Message(served.status()));
      }
      metrics_failing_ = true;
      return true;
    }
    metrics_discovered_ = true;
    if (!*served) return false;
  }
  std::string path =
      absl::StrCat("/apis/", kMetricsGroupVersion, "/namespaces/", options_.namespace_, "/pods");
  // TrainJob pods carry JobSet's labels, not ours: then every pod of the namespace is listed.
  if (!trainjobs_) {
    absl::StrAppend(&path, "?labelSelector=",
                    kube::QueryEscape(absl::StrCat(kManagedByLabel, "=", kManagedBy)));
  }
  // A slow metrics API costs at most a period of this thread, nothing else.
  const auto timeout = std::min<std::chrono::milliseconds>(
      options_.cluster.timeout,
      std::max<std::chrono::milliseconds>(options_.metrics_period, std::chrono::seconds(1)));
  auto text = client_->GetText(path, nullptr, timeout);
  json list = text.ok() ? json::parse(*text, nullptr, /*allow_exceptions=*/false) : json();
  {
    std::lock_guard lock(usage_mu_);
    const bool failing = !text.ok() || !list.is_object();
    if (failing && !metrics_failing_) {
      log::Get("compute")->warn("cannot list pod metrics (usage stays as last seen): {}",
                                text.ok() ? "the answer is not JSON" : Message(text.status()));
    }
    if (!failing && metrics_failing_) log::Get("compute")->info("pod metrics are listed again");
    metrics_failing_ = failing;
    if (failing) return true;
  }
  std::set<std::string> changed;
  const auto now = std::chrono::system_clock::now();
  for (const json& item : list.value("items", json::array())) {
    if (!item.is_object()) continue;
    const std::string name = Meta(item).value("name", "");
    // Whose pod it is, from the informers' copy.
    std::string id;
    if (auto pod = pods_->Get(name)) id = Label(*pod, kWorkloadLabel);
    if (id.empty() && trainer_pods_) {
      if (auto pod = trainer_pods_->Get(name)) id = Label(*pod, trainjob::kPodLabel);
    }
    if (id.empty()) continue;
    const std::string timestamp = item.value("timestamp", "");
    const std::string window_text = item.value("window", "");
    absl::Duration window;
    if (!absl::ParseDuration(window_text, &window) || window <= absl::ZeroDuration()) continue;
    int64_t millicores = 0, memory = 0;
    bool parsed = true;
    for (const json& c : item.value("containers", json::array())) {
      const json usage = c.is_object() ? c.value("usage", json::object()) : json::object();
      auto cpu = ParseMilliQuantity(usage.value("cpu", "0"));
      auto bytes = ParseQuantity(usage.value("memory", "0"));
      if (!cpu.ok() || !bytes.ok()) {
        parsed = false;
        break;
      }
      millicores += *cpu;
      memory += *bytes;
    }
    if (!parsed) continue;
    const auto at = ParseTime(item.value("timestamp", json())).value_or(now);
    std::lock_guard lock(usage_mu_);
    PodUsage& u = usage_[id][name];
    const std::string sample = absl::StrCat(timestamp, " ", window_text);
    if (u.last_sample == sample) continue;  // metrics-server has not scraped since
    // The rate stands for its window, or for the whole gap when samples were missed.
    double seconds = absl::ToDoubleSeconds(window);
    if (u.last_time) {
      const double gap = std::chrono::duration<double>(at - *u.last_time).count();
      if (gap > seconds + 1) seconds = gap;
    }
    u.cpu_seconds += static_cast<double>(millicores) / 1000 * seconds;
    u.memory_bytes = memory;
    u.max_memory_bytes = std::max(u.max_memory_bytes, memory);
    u.last_sample = sample;
    u.last_time = at;
    changed.insert(id);
  }
  {
    std::lock_guard lock(usage_mu_);
    std::erase_if(usage_, [&](const auto& entry) { return !anchors_->Get(entry.first); });
  }
  // Usage alone changed: List observes these again.
  for (const std::string& id : changed) Changed({.name = id}, IdFrom::kName);
  return true;
}

std::optional<Usage> KubernetesBackend::UsageOf(const std::string& id,
                                                const std::vector<const json*>& pods,
                                                bool running) {
  std::lock_guard lock(usage_mu_);
  auto workload = usage_.find(id);
  if (workload == usage_.end()) return std::nullopt;
  std::optional<Usage> out;
  for (size_t i = 0; i < pods.size(); ++i) {
    auto it = workload->second.find(Meta(*pods[i]).value("name", ""));
    if (it == workload->second.end()) continue;
    if (!out) out = Usage{};
    out->cpu_seconds += it->second.cpu_seconds;
    out->max_memory_bytes = std::max(out->max_memory_bytes, it->second.max_memory_bytes);
    if (running && i + 1 == pods.size()) out->memory_bytes = it->second.memory_bytes;
  }
  return out;
}

// ---- Stop and Delete ----

absl::Status KubernetesBackend::StopObjects(const std::string& id, const Objects& o,
                                            std::chrono::milliseconds grace) {
  // The Jobs go first, orphaning their pods, so that no new attempt starts. A TrainJob is
  // suspended instead (its JobSet would make new Jobs): the Job controller ends its running pods
  // and ended ones keep their verdict.
  for (const auto& [role, job] : o.jobs) {
    absl::Status s = client_->Delete(Path("jobs", JobName(id, role)), "Orphan");
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    jobs_->Forget(JobName(id, role));
  }
  for (const auto& [role, set] : o.sets) {  // likewise: no pod is replaced
    absl::Status s = client_->Delete(Path("statefulsets", JobName(id, role)), "Orphan");
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    sets_->Forget(JobName(id, role));
  }
  // What each live pod wrote so far, then (in the background) the rest until it ends: a task
  // that dies at once on SIGTERM may be gone before a follower connects.
  std::map<std::pair<std::string, int>, int> attempt;
  std::vector<std::string> live;
  for (const json& pod : o.pods) {
    const std::optional<TaskRef> task = PodTask(o, pod);
    if (!task) continue;
    const int a = o.spec.kind == WorkloadKind::kService ? RestartCount(pod) + 1
                                                        : ++attempt[{task->role, task->index}];
    if (Ended(pod)) continue;
    // Kept also when someone else is deleting it already (its log goes with it).
    SUBMARINE_RETURN_IF_ERROR(Archive(id, *task, pod, a, /*follow=*/false));
    ArchiveInBackground(id, *task, pod, a, grace);
    if (Meta(pod).value("deletionTimestamp", "").empty())
      live.push_back(Meta(pod).value("name", ""));
  }
  if (o.trainjob && !o.trainjob->value("spec", json::object()).value("suspend", false)) {
    auto suspended =
        client_->MergePatch(Path(trainjob::kPlural, id), {{"spec", {{"suspend", true}}}});
    if (!suspended.ok() && !absl::IsNotFound(suspended.status())) return suspended.status();
    if (suspended.ok()) trainjobs_->Apply(*suspended);
  }
  const int64_t seconds = std::max<int64_t>(1, (grace.count() + 999) / 1000);
  for (const std::string& name : live) {
    absl::Status s = client_->Delete(Path("pods", name), "Background", seconds);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return absl::OkStatus();
}

absl::Status KubernetesBackend::Stop(const std::string& id, std::chrono::milliseconds grace) {
  SUBMARINE_ASSIGN_OR_RETURN(Objects o, Find(id));
  if (!Annotation(o.anchor, kFinalAnnotation).empty()) return absl::OkStatus();
  if (Annotation(o.anchor, kStopAnnotation).empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(
        json marked,
        client_->MergePatch(
            Path("configmaps", id),
            {{"metadata", {{"annotations", {{kStopAnnotation, absl::StrCat(grace.count())}}}}}}));
    anchors_->Apply(marked);
  }
  return StopObjects(id, o, grace);
}

absl::Status KubernetesBackend::Delete(const std::string& id, bool keep_logs) {
  auto found = Find(id);
  if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
  if (found.ok()) {
    std::map<std::pair<std::string, int>, int> attempt;
    for (const json& pod : found->pods) {
      const std::optional<TaskRef> task = PodTask(*found, pod);
      if (!task) continue;
      const int a = found->spec.kind == WorkloadKind::kService
                        ? RestartCount(pod) + 1
                        : ++attempt[{task->role, task->index}];
      if (keep_logs) {
        absl::Status archived = Archive(id, *task, pod, a, false);
        if (!archived.ok()) log::Get("compute")->warn("{}: {}", id, Message(archived));
      }
    }
    if (found->on_trainer) {
      absl::Status s = client_->Delete(Path(trainjob::kPlural, id), "Background");
      if (!s.ok() && !absl::IsNotFound(s)) return s;
      trainjobs_->Forget(id);
    }
    for (const auto& [role, job] : found->jobs) {
      absl::Status s = client_->Delete(Path("jobs", JobName(id, role)), "Background");
      if (!s.ok() && !absl::IsNotFound(s)) return s;
      jobs_->Forget(JobName(id, role));
    }
    for (const auto& [role, set] : found->sets) {
      absl::Status s = client_->Delete(Path("statefulsets", JobName(id, role)), "Background");
      if (!s.ok() && !absl::IsNotFound(s)) return s;
      sets_->Forget(JobName(id, role));
    }
    for (const json& pod : found->pods) {
      absl::Status s = client_->Delete(Path("pods", Meta(pod).value("name", "")), "Background", 0);
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
    absl::Status s = client_->Delete(Path("services", id), "Background");
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    if (!found->spec.secret_env.empty()) {
      s = client_->Delete(Path("secrets", id), "Background");
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
    s = client_->Delete(Path("configmaps", id), "Background");
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    std::lock_guard lock(mu_);
    deleted_.insert(id);
  }
  anchors_->Forget(id);
  {
    std::lock_guard lock(usage_mu_);
    usage_.erase(id);
  }
  if (!keep_logs) {
    std::error_code ec;
    fs::remove_all(LogDir(id), ec);
  }
  return absl::OkStatus();
}

// ---- Logs ----

absl::Status KubernetesBackend::Archive(const std::string& id, const TaskRef& task, const json& pod,
                                        int attempt, bool follow,
                                        const std::function<void()>& on_started,
                                        std::chrono::milliseconds follow_for) {
  const std::string file = absl::StrCat(LogDir(id), "/", TaskName(task), "/", attempt, ".log");
  // A follower's whole log replaces a snapshot; anything else is written once.
  if (!follow && fs::exists(file)) return absl::OkStatus();
  if (!follow && ContainerState(pod).first.empty() && !Ended(pod)) {
    return absl::OkStatus();  // never started: no log
  }
  std::string query =
      absl::StrCat(Path("pods", Meta(pod).value("name", "")), "/log?container=", ContainerOf(pod),
                   follow ? "&follow=true" : "");
  auto text = follow ? client_->GetText(query, on_started, follow_for) : client_->GetText(query);
  if (!text.ok()) {
    // A pod that never started a container has no log (400); one already gone (404) is lost.
    if (absl::IsInvalidArgument(text.status()) || absl::IsNotFound(text.status())) {
      return absl::OkStatus();
    }
    return text.status();
  }
  if (follow) {
    auto snapshot = ReadFileIfAny(file);
    if (snapshot && snapshot->size() > text->size()) return absl::OkStatus();
  }
  return WriteArchiveFile(file, *text);
}

void KubernetesBackend::ArchiveInBackground(const std::string& id, const TaskRef& task,
                                            const json& pod, int attempt,
                                            std::chrono::milliseconds grace) {
  const std::string name = Meta(pod).value("name", "");
  {
    std::lock_guard lock(mu_);
    if (!following_.emplace(name, id).second) return;
    ++followers_running_;
  }
  // Opened (or given up) before the pod is deleted: a pod that ends at once on SIGTERM is gone,
  // with its log, before a late follower connects.
  auto opened = std::make_shared<absl::Notification>();
  // Only the follower's thread calls it (curl calls on_started on it), so the check is safe.
  auto open = [opened] {
    if (!opened->HasBeenNotified()) opened->Notify();
  };
  // The stream lasts the grace and the container's own end; a stuck one is cut after that.
  const auto follow_for = grace + std::chrono::minutes(1);
  std::thread([this, id, task, pod, attempt, name, open, follow_for] {
    absl::Status s = Archive(id, task, pod, attempt, /*follow=*/true, open, follow_for);
    open();  // failed before its stream opened
    if (!s.ok()) log::Get("compute")->warn("{}: archiving a stopped pod's log: {}", id, Message(s));
    {
      std::lock_guard lock(mu_);
      following_.erase(name);
    }
    // Its workload may be final now: observe it again.
    Changed({.name = id}, IdFrom::kName);
    std::lock_guard lock(mu_);
    --followers_running_;
    followers_done_.notify_all();
  }).detach();
  opened->WaitForNotificationWithTimeout(absl::FromChrono(options_.cluster.timeout));
}

bool KubernetesBackend::FollowingLogsOf(const std::string& id) {
  std::lock_guard lock(mu_);
  for (const auto& [pod, workload] : following_) {
    if (workload == id) return true;
  }
  return false;
}

absl::StatusOr<LogChunk> KubernetesBackend::ReadLog(const std::string& id, const TaskRef& task,
                                                    int64_t offset, int64_t max_bytes) {
  if (!ValidId(id) || !ValidName(task.role, 40) || task.index < 0) {
    return NotFound("workload", QuoteInput(id));
  }
  auto stored = ReadFileIfAny(absl::StrCat(LogDir(id), "/", kSpecKey));
  if (!stored) return NotFound("workload", id);
  SUBMARINE_ASSIGN_OR_RETURN(
      WorkloadSpec spec, SpecFromJson(json::parse(*stored, nullptr, /*allow_exceptions=*/false)));
  const bool service = spec.kind == WorkloadKind::kService;
  const auto tasks = TasksOf(spec);
  // A service's replicas come and go with Scale: any index of its roles may have had one.
  const bool known = service ? std::any_of(spec.roles.begin(), spec.roles.end(),
                                           [&](const RoleSpec& r) { return r.name == task.role; })
                             : std::find(tasks.begin(), tasks.end(), task) != tasks.end();
  if (!known) return NotFound("task", absl::StrCat(id, "/", TaskName(task)));
  auto found = Find(id);
  if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
  const bool gone = !found.ok();
  const bool final = gone || !Annotation(found->anchor, kFinalAnnotation).empty();

  std::string all;
  const std::string dir = absl::StrCat(LogDir(id), "/", TaskName(task));
  int archived = 0;
  for (int a = 1;; ++a) {
    auto part = ReadFileIfAny(absl::StrCat(dir, "/", a, ".log"));
    if (!part) break;
    all += *part;
    archived = a;
  }
  bool complete = final;
  if (!gone) {
    std::vector<const json*> pods;
    for (const json& pod : found->pods) {
      if (PodTask(*found, pod) == task) pods.push_back(&pod);
    }
    if (service && !pods.empty()) {
      // Its attempts are the container's runs in one pod: the one before the running one is
      // still the kubelet's "previous", when the next Get has not archived it yet.
      const json& pod = *pods.back();
      const int current = RestartCount(pod) + 1;
      const std::string path =
          absl::StrCat(Path("pods", Meta(pod).value("name", "")), "/log?container=", kContainer);
      if (current > archived) {
        if (current - 1 > archived) {
          auto previous = client_->GetText(path + "&previous=true");
          if (previous.ok()) all += *previous;
        }
        auto text = client_->GetText(path);
        if (text.ok()) all += *text;
      }
      complete = false;
    } else if (static_cast<int>(pods.size()) > archived) {
      // The attempts after the archived ones are read live.
      for (size_t a = archived; a < pods.size(); ++a) {
        auto text = client_->GetText(absl::StrCat(Path("pods", Meta(*pods[a]).value("name", "")),
                                                  "/log?container=", ContainerOf(*pods[a])));
        if (text.ok()) all += *text;
      }
      complete = false;
    }
  }
  LogChunk chunk;
  chunk.size = static_cast<int64_t>(all.size());
  chunk.complete = complete;
  const int64_t from = std::min<int64_t>(std::max<int64_t>(offset, 0), chunk.size);
  const int64_t n = std::min<int64_t>(std::max<int64_t>(max_bytes, 0), chunk.size - from);
  chunk.data = all.substr(from, n);
  chunk.next_offset = from + n;
  return chunk;
}

}  // namespace submarine::compute
