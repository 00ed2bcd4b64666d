#include "tests/support/fake_kube/kubelet.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Kubernetes' $(VAR) expansion of env values, command and args: `$$` is a literal `$`, an
// unknown variable stays as written.
std::string Expand(const std::string& s, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$' || i + 1 >= s.size()) {
      out.push_back(s[i]);
    } else if (s[i + 1] == '$') {
      out.push_back('$');
      ++i;
    } else if (s[i + 1] == '(') {
      size_t close = s.find(')', i + 2);
      if (close == std::string::npos) {
        out.append(s, i, std::string::npos);
        break;
      }
      std::string name = s.substr(i + 2, close - i - 2);
      auto it = vars.find(name);
      out.append(it != vars.end() ? it->second : absl::StrCat("$(", name, ")"));
      i = close;
    } else {
      out.push_back('$');
    }
  }
  return out;
}

// Where execve will find argv[0]; empty with `problem` set when it cannot run.
std::string ResolveExecutable(const std::string& argv0, const std::string& path_var,
                              std::string* problem) {
  auto runnable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (argv0.empty()) {
    *problem =
        "exec: no command specified (the fake kubelet runs only containers that set "
        "`command`)";
    return "";
  }
  if (argv0.find('/') != std::string::npos) {
    if (runnable(argv0)) return argv0;
    *problem = absl::StrCat(
        "exec: \"", argv0, "\": stat ", argv0, ": ",
        ::access(argv0.c_str(), F_OK) == 0 ? "permission denied" : "no such file or directory");
    return "";
  }
  for (absl::string_view dir : absl::StrSplit(path_var, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", argv0);
    if (runnable(candidate)) return candidate;
  }
  *problem = absl::StrCat("exec: \"", argv0, "\": executable file not found in $PATH");
  return "";
}

json Condition(const std::string& type, bool status, const std::string& reason = "",
               const std::string& message = "") {
  json c = {{"type", type},
            {"status", status ? "True" : "False"},
            {"lastProbeTime", nullptr},
            {"lastTransitionTime", NowRfc3339()}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

// Sets a pod condition, keeping lastTransitionTime when the status does not change.
void SetCondition(json& status, json condition) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  for (auto& c : conditions) {
    if (c.value("type", "") != condition["type"]) continue;
    if (c.value("status", "") == condition["status"]) {
      condition["lastTransitionTime"] = c["lastTransitionTime"];
    }
    c = std::move(condition);
    return;
  }
  conditions.push_back(std::move(condition));
}

json* ContainerStatus(json& status, const std::string& name) {
  json& list = status["containerStatuses"];
  if (!list.is_array()) list = json::array();
  for (auto& c : list) {
    if (c.value("name", "") == name) return &c;
  }
  return nullptr;
}

void SetAllContainers(json& status, const json& spec,
                      const std::function<void(json& container_status, bool first)>& edit) {
  json& list = status["containerStatuses"];
  if (!list.is_array()) list = json::array();
  const json& containers = Field(spec, "containers");
  for (size_t i = 0; containers.is_array() && i < containers.size(); ++i) {
    std::string name = StringField(containers[i], "name");
    json* cs = ContainerStatus(status, name);
    if (!cs) {
      list.push_back({{"name", name},
                      {"image", StringField(containers[i], "image")},
                      {"imageID", ""},
                      {"ready", false},
                      {"restartCount", 0},
                      {"started", false},
                      {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}},
                      {"lastState", json::object()}});
      cs = &list.back();
    }
    edit(*cs, i == 0);
  }
}

void SetIps(json& status, const std::string& pod_ip) {
  status["hostIP"] = Kubelet::kPodIp;
  status["hostIPs"] = {{{"ip", Kubelet::kPodIp}}};
  status["podIP"] = pod_ip;
  status["podIPs"] = {{{"ip", pod_ip}}};
}

// "containers with unready status: [a b]", the Ready conditions' message.
std::string UnreadyMessage(const json& spec) {
  std::vector<std::string> names;
  const json& containers = Field(spec, "containers");
  for (size_t i = 0; containers.is_array() && i < containers.size(); ++i) {
    names.push_back(StringField(containers[i], "name"));
  }
  return absl::StrCat("containers with unready status: [", absl::StrJoin(names, " "), "]");
}

// The quoted key of "metadata.labels['key']".
std::optional<std::string> Subscript(const std::string& path, const std::string& prefix) {
  if (!absl::StartsWith(path, prefix + "['") || !absl::EndsWith(path, "']")) return std::nullopt;
  return path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
}

struct ContainerEnv {
  std::vector<std::pair<std::string, std::string>> ordered;
  std::map<std::string, std::string> vars;
  void Set(const std::string& k, const std::string& v) {
    if (vars.count(k)) {
      for (auto& [name, value] : ordered) {
        if (name == k) value = v;
      }
    } else {
      ordered.emplace_back(k, v);
    }
    vars[k] = v;
  }
};

}  // namespace

std::optional<std::string> PodFieldValue(const json& pod, const std::string& path,
                                         const std::string& pod_ip) {
  const json& meta = Field(pod, "metadata");
  if (path == "metadata.name") return StringField(meta, "name");
  if (path == "metadata.namespace") return StringField(meta, "namespace");
  if (path == "metadata.uid") return StringField(meta, "uid");
  if (auto key = Subscript(path, "metadata.labels")) {
    return StringField(Field(meta, "labels"), *key);
  }
  if (auto key = Subscript(path, "metadata.annotations")) {
    return StringField(Field(meta, "annotations"), *key);
  }
  if (path == "spec.nodeName") return std::string(Kubelet::kNodeName);
  if (path == "spec.serviceAccountName") {
    std::string sa = StringField(Field(pod, "spec"), "serviceAccountName");
    return sa.empty() ? "default" : sa;
  }
  if (path == "status.podIP" || path == "status.podIPs") return pod_ip;
  if (path == "status.hostIP" || path == "status.hostIPs") return std::string(Kubelet::kPodIp);
  return std::nullopt;
}

Kubelet::Kubelet(ObjectStore& store, Options options)
    : store_(store),
      pods_(*store.catalog().Find("", "v1", "pods")),
      options_(std::move(options)),
      work_dir_(options_.work_dir),
      api_port_(options_.api_port) {}

Kubelet::~Kubelet() { Stop(); }

absl::Status Kubelet::Start() {
  std::error_code ec;
  fs::create_directories(fs::path(work_dir_) / "pods", ec);
  fs::create_directories(fs::path(work_dir_) / "logs", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", work_dir_, ": ", ec.message()));
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::InternalError("eventfd failed");
  const int pods_index = store_.catalog().IndexOf(pods_);
  const int secrets_index = store_.catalog().IndexOf(*store_.catalog().Find("", "v1", "secrets"));
  // The store outlives this kubelet; the listener only queues while it runs.
  store_.Subscribe([this, pods_index, secrets_index](const StoreEvent& e) {
    if (e.type_index != pods_index && e.type_index != secrets_index) return;
    const json& meta = e.object->json["metadata"];
    absl::MutexLock lock(&queue_mu_);
    if (stopping_) return;
    (e.type_index == pods_index ? queue_ : changed_secrets_)
        .push_back(StringField(meta, "namespace") + "/" + StringField(meta, "name"));
    Wake();
  });
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Kubelet::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void Kubelet::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    if (stopping_) return;
    stopping_ = true;
    if (wake_fd_ >= 0) Wake();
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& [uid, rt] : pods_by_uid_) RetireProber(rt);
  retired_probers_.clear();  // joins each (a probe in flight ends within its timeout)
  for (auto& [uid, rt] : pods_by_uid_) {
    if (rt.pid <= 0) continue;
    ::kill(-rt.pid, SIGKILL);
    ::kill(rt.pid, SIGKILL);
    int st;
    ::waitpid(rt.pid, &st, 0);
    if (rt.pidfd >= 0) ::close(rt.pidfd);
    rt.pid = -1;
    rt.pidfd = -1;
  }
}

void Kubelet::Loop() {
  while (true) {
    std::vector<std::string> keys;
    std::vector<ProbeReport> reports;
    std::vector<std::string> secrets;
    {
      absl::MutexLock lock(&queue_mu_);
      if (stopping_) return;
      keys.swap(queue_);
      reports.swap(probe_reports_);
      secrets.swap(changed_secrets_);
    }
    uint64_t drained;
    (void)!::read(wake_fd_, &drained, sizeof(drained));
    absl::MutexLock lock(&mu_);
    if (!secrets.empty()) {
      const std::set<std::string> changed(secrets.begin(), secrets.end());
      for (auto& [uid, rt] : pods_by_uid_) {
        if (rt.finished) continue;
        for (const auto& volume : rt.secret_volumes) {
          if (changed.count(rt.namespace_ + "/" + volume.secret))
            ProjectSecret(rt.namespace_, volume);
        }
      }
    }
    std::set<std::string> seen;
    for (const auto& key : keys) {
      if (seen.insert(key).second) Sync(key);
    }
    for (const auto& report : reports) HandleProbe(report);
    // Stopped probers are joined once their thread has ended, never waited for here.
    retired_probers_.erase(
        std::remove_if(retired_probers_.begin(), retired_probers_.end(),
                       [](const std::unique_ptr<ProbeWorker>& w) { return w->finished(); }),
        retired_probers_.end());
    absl::Time now = absl::Now();
    absl::Time next = now + (retired_probers_.empty() ? absl::Seconds(1) : absl::Milliseconds(50));
    std::vector<std::string> restarts;
    for (auto& [uid, rt] : pods_by_uid_) {
      if (rt.kill_at && *rt.kill_at <= now && rt.pid > 0) {
        KillGroup(rt, SIGKILL);
        rt.kill_at.reset();
      }
      if (rt.restart_at && *rt.restart_at <= now) {
        rt.restart_at.reset();
        restarts.push_back(uid);
      }
      if (rt.kill_at) next = std::min(next, *rt.kill_at);
      if (rt.restart_at) next = std::min(next, *rt.restart_at);
    }
    for (const auto& uid : restarts) StartContainer(uid);
    std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}};
    std::vector<std::string> uids = {""};
    for (auto& [uid, rt] : pods_by_uid_) {
      if (rt.pidfd >= 0) {
        fds.push_back({rt.pidfd, POLLIN, 0});
        uids.push_back(uid);
      }
    }
    int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(next - absl::Now()) + 1));
    mu_.Unlock();
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    mu_.Lock();
    if (n <= 0) continue;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      auto it = pods_by_uid_.find(uids[i]);
      if (it == pods_by_uid_.end() || it->second.pid <= 0) continue;
      int st = 0;
      if (::waitpid(it->second.pid, &st, WNOHANG) == it->second.pid) HandleExit(uids[i], st);
    }
  }
}

void Kubelet::KillGroup(PodRuntime& rt, int signal) {
  if (rt.pid <= 0) return;
  ::kill(-rt.pid, signal);
}

void Kubelet::WriteStatus(const std::string& namespace_, const std::string& name,
                          const std::function<void(json& status)>& edit) {
  (void)store_.Mutate(pods_, namespace_, name, /*status_write=*/true, Writer::kController,
                      [&](json& pod) {
                        json& status = pod["status"];
                        if (!status.is_object()) status = json::object();
                        edit(status);
                        return absl::OkStatus();
                      });
}

void Kubelet::FinalDelete(const std::string& namespace_, const std::string& name,
                          const std::string& uid) {
  (void)store_.Delete(pods_, namespace_, name,
                      DeleteOptions{.grace_period_seconds = 0, .precondition_uid = uid});
}

void Kubelet::Sync(const std::string& key) {
  size_t slash = key.find('/');
  const std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  auto pod = store_.Get(pods_, ns, name);
  auto known = uid_by_key_.find(key);
  std::string uid = pod.ok() ? StringField((*pod)->json["metadata"], "uid") : "";
  if (known != uid_by_key_.end() && known->second != uid) {
    // The pod this key named is gone (or replaced): nothing of it may keep running.
    auto rt = pods_by_uid_.find(known->second);
    if (rt != pods_by_uid_.end()) {
      if (rt->second.pid > 0) {
        KillGroup(rt->second, SIGKILL);
      } else {
        Forget(rt);
      }
    }
    uid_by_key_.erase(known);
  }
  if (!pod.ok()) return;
  const json& object = (*pod)->json;
  const json& meta = object["metadata"];
  const json& spec = Field(object, "spec");
  std::string node = StringField(spec, "nodeName");
  if (!node.empty() && node != kNodeName) return;  // bound elsewhere: not this node's
  uid_by_key_[key] = uid;
  PodRuntime& rt = pods_by_uid_[uid];
  if (rt.uid.empty()) {
    rt.namespace_ = ns;
    rt.name = name;
    rt.uid = uid;
    const json& containers = Field(spec, "containers");
    rt.container =
        containers.is_array() && !containers.empty() ? StringField(containers[0], "name") : "";
  }
  std::string phase = StringField(Field(object, "status"), "phase");
  if (!Field(meta, "deletionTimestamp").is_null()) {
    if (rt.pid > 0) {
      if (!rt.terminating) {
        rt.terminating = true;
        KillGroup(rt, SIGTERM);
      }
      // The grace period counts from when the kubelet sees the deletion; a shorter one given
      // later (a second delete) brings the kill forward.
      const int64_t grace = IntField(meta, "deletionGracePeriodSeconds", 0);
      absl::Time kill_at = absl::Now() + absl::Seconds(grace);
      if (!rt.kill_at || kill_at < *rt.kill_at) rt.kill_at = kill_at;
      if (grace == 0) {
        KillGroup(rt, SIGKILL);
        rt.kill_at.reset();
      }
    } else {
      rt.restart_at.reset();
      if (!rt.finished && !node.empty() && phase != "Succeeded" && phase != "Failed") {
        // Deleted while not running (waiting to start or to restart): it ends as Failed.
        rt.finished = true;
        WriteStatus(ns, name, [](json& status) {
          status["phase"] = "Failed";
          SetCondition(status, Condition("Ready", false, "PodCompleted"));
        });
      }
      FinalDelete(ns, name, uid);
    }
    return;
  }
  if (rt.finished || rt.pid > 0 || rt.restart_at) return;
  if (phase == "Succeeded" || phase == "Failed") {
    rt.finished = true;
    return;
  }
  if (node.empty()) {
    const json& gates = Field(spec, "schedulingGates");
    if (gates.is_array() && !gates.empty()) {
      WriteStatus(ns, name, [](json& status) {
        status["phase"] = "Pending";
        SetCondition(status, Condition("PodScheduled", false, "SchedulingGated",
                                       "Scheduling is blocked due to non-empty scheduling gates"));
      });
      return;
    }
    Bind(object);
  }
  StartContainer(uid);
}

void Kubelet::Bind(const json& pod) {
  const json& meta = pod["metadata"];
  const std::string ns = StringField(meta, "namespace"), name = StringField(meta, "name");
  auto bound =
      store_.Mutate(pods_, ns, name, /*status_write=*/false, Writer::kController, [](json& p) {
        p["spec"]["nodeName"] = kNodeName;
        return absl::OkStatus();
      });
  if (!bound.ok()) return;
  const json spec = (*bound)->json["spec"];
  WriteStatus(ns, name, [&](json& status) {
    status["phase"] = "Pending";
    SetCondition(status, Condition("PodScheduled", true));
    SetCondition(status, Condition("Initialized", true));
    SetCondition(status, Condition("PodReadyToStartContainers", false));
    SetCondition(status, Condition("ContainersReady", false, "ContainersNotReady"));
    SetCondition(status, Condition("Ready", false, "ContainersNotReady"));
    status["hostIP"] = kPodIp;
    status["hostIPs"] = {{{"ip", kPodIp}}};
    status["startTime"] = NowRfc3339();
    SetAllContainers(status, spec, [](json&, bool) {});
  });
}

void Kubelet::StartContainer(const std::string& uid) {
  auto found = pods_by_uid_.find(uid);
  if (found == pods_by_uid_.end()) return;
  PodRuntime& rt = found->second;
  auto pod = store_.Get(pods_, rt.namespace_, rt.name);
  if (!pod.ok() || StringField((*pod)->json["metadata"], "uid") != uid) return;
  const json& object = (*pod)->json;
  const json& spec = object["spec"];
  const json& containers = Field(spec, "containers");
  if (!containers.is_array() || containers.empty()) return;
  const json& container = containers[0];
  if (rt.ip.empty()) rt.ip = options_.distinct_pod_ips ? AllocateIp() : kPodIp;

  // The environment, as the kubelet assembles it.
  ContainerEnv env;
  for (const char* name :
       {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SHELL"}) {
    if (const char* v = std::getenv(name)) env.Set(name, v);
  }
  if (!env.vars.count("PATH")) env.Set("PATH", kDefaultPath);
  std::string hostname = StringField(spec, "hostname");
  env.Set("HOSTNAME", hostname.empty() ? rt.name : hostname);
  env.Set("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  env.Set("KUBERNETES_SERVICE_PORT", std::to_string(api_port_));
  env.Set("KUBERNETES_PORT", absl::StrCat("tcp://127.0.0.1:", api_port_));
  const ResourceType* configmaps = store_.catalog().Find("", "v1", "configmaps");
  const ResourceType* secrets = store_.catalog().Find("", "v1", "secrets");
  std::string config_error;
  auto source_data = [&](bool secret, const json& ref, json* data) {
    std::string ref_name = StringField(ref, "name");
    auto obj = store_.Get(secret ? *secrets : *configmaps, rt.namespace_, ref_name);
    if (!obj.ok()) {
      if (!BoolField(ref, "optional")) {
        config_error =
            absl::StrCat(secret ? "secret" : "configmap", " \"", ref_name, "\" not found");
      }
      return false;
    }
    *data = Field((*obj)->json, "data");
    return true;
  };
  const json& env_from = Field(container, "envFrom");
  for (size_t i = 0; env_from.is_array() && i < env_from.size(); ++i) {
    bool secret = env_from[i].contains("secretRef");
    json data;
    if (!source_data(secret, Field(env_from[i], secret ? "secretRef" : "configMapRef"), &data)) {
      continue;
    }
    std::string prefix = StringField(env_from[i], "prefix");
    for (auto it = data.begin(); data.is_object() && it != data.end(); ++it) {
      std::string value = it->is_string() ? it->get<std::string>() : "";
      if (secret) absl::Base64Unescape(std::string(value), &value);
      env.Set(prefix + it.key(), value);
    }
  }
  const json& env_list = Field(container, "env");
  for (size_t i = 0; env_list.is_array() && i < env_list.size(); ++i) {
    const json& e = env_list[i];
    std::string name = StringField(e, "name");
    const json& from = Field(e, "valueFrom");
    if (from.is_null()) {
      env.Set(name, Expand(StringField(e, "value"), env.vars));
    } else if (from.contains("fieldRef")) {
      env.Set(
          name,
          PodFieldValue(object, StringField(from["fieldRef"], "fieldPath"), rt.ip).value_or(""));
    } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
      bool secret = from.contains("secretKeyRef");
      const json& ref = from[secret ? "secretKeyRef" : "configMapKeyRef"];
      json data;
      if (!source_data(secret, ref, &data)) continue;
      std::string key = StringField(ref, "key");
      if (!data.is_object() || !data.contains(key)) {
        if (!BoolField(ref, "optional")) {
          config_error =
              absl::StrCat("couldn't find key ", key, " in ", secret ? "Secret " : "ConfigMap ",
                           rt.namespace_, "/", StringField(ref, "name"));
        }
        continue;
      }
      std::string value = data[key].is_string() ? data[key].get<std::string>() : "";
      if (secret) absl::Base64Unescape(std::string(value), &value);
      env.Set(name, value);
    } else {
      env.Set(name, "");
    }
  }
  if (std::string waiting = PrepareVolumes(rt, spec, container); !waiting.empty()) {
    // MountVolume.SetUp failed: the kubelet retries until the volume's source exists.
    rt.restart_at = absl::Now() + absl::Seconds(1);
    WriteStatus(rt.namespace_, rt.name, [&](json& status) {
      SetAllContainers(status, spec, [&](json& cs, bool) {
        cs["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
      });
    });
    if (options_.events) {
      options_.events->Record({"kubelet", kNodeName}, object, "", "Warning", "FailedMount",
                              waiting);
    }
    return;
  }
  // A process cannot see the mounts: paths under a mountPath name the volume's directory.
  auto host_path = [&](const std::string& value) {
    for (const auto& [mount_path, dir] : rt.mounts) {
      if (value == mount_path) return dir;
      if (absl::StartsWith(value, mount_path + "/")) {
        return dir + value.substr(mount_path.size());
      }
    }
    return value;
  };
  for (auto& [k, v] : env.ordered) {
    v = host_path(v);
    env.vars[k] = v;
  }
  if (!config_error.empty()) {
    // CreateContainerConfigError: the kubelet retries until the config exists.
    rt.restart_at = absl::Now() + absl::Seconds(1);
    WriteStatus(rt.namespace_, rt.name, [&](json& status) {
      SetAllContainers(status, spec, [&](json& cs, bool) {
        cs["state"] = {
            {"waiting", {{"reason", "CreateContainerConfigError"}, {"message", config_error}}}};
      });
    });
    return;
  }

  std::vector<std::string> argv;
  for (const char* field : {"command", "args"}) {
    const json& list = Field(container, field);
    for (size_t i = 0; list.is_array() && i < list.size(); ++i) {
      argv.push_back(
          host_path(Expand(list[i].is_string() ? list[i].get<std::string>() : "", env.vars)));
    }
  }
  const std::string instance = std::to_string(rt.instances.size());
  fs::path log_dir = fs::path(work_dir_) / "logs" /
                     absl::StrCat(rt.namespace_, "_", rt.name, "_", uid) / rt.container;
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  std::string log_path = (log_dir / (instance + ".log")).string();
  std::string dir = host_path(StringField(container, "workingDir"));
  if (dir.empty() || !fs::is_directory(dir, ec)) {
    dir = (fs::path(work_dir_) / "pods" / absl::StrCat(rt.namespace_, "_", rt.name, "_", uid))
              .string();
    fs::create_directories(dir, ec);
  }
  rt.instances.push_back({log_path, false});
  const std::string started = NowRfc3339();
  std::string problem;
  std::string executable =
      ResolveExecutable(argv.empty() ? "" : argv[0], env.vars["PATH"], &problem);

  pid_t pid = -1;
  if (problem.empty()) {
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env.ordered) env_strings.push_back(k + "=" + v);
    std::vector<char*> c_argv, c_envp;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    for (auto& e : env_strings) c_envp.push_back(e.data());
    c_envp.push_back(nullptr);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      problem = "pipe2 failed";
    } else {
      pid = ::fork();
      if (pid == 0) {
        // Child: async-signal-safe calls only.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
        ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
        int in = ::open("/dev/null", O_RDONLY);
        int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in >= 0) ::dup2(in, 0);
        if (out >= 0) {
          ::dup2(out, 1);
          ::dup2(out, 2);
        }
        int err = 0;
        if (::chdir(dir.c_str()) != 0) err = errno;
        if (err == 0) {
          ::execve(executable.c_str(), c_argv.data(), c_envp.data());
          err = errno;
        }
        (void)!::write(pipe_fds[1], &err, sizeof(err));
        ::_exit(127);
      }
      ::close(pipe_fds[1]);
      if (pid < 0) {
        problem = absl::StrCat("fork: ", std::strerror(errno));
      } else {
        ::setpgid(pid, pid);
        int err = 0;
        ssize_t n;
        do {
          n = ::read(pipe_fds[0], &err, sizeof(err));
        } while (n < 0 && errno == EINTR);
        if (n == sizeof(err)) {
          problem = absl::StrCat("exec: \"", argv[0], "\": ", std::strerror(err));
          int st;
          ::waitpid(pid, &st, 0);
          pid = -1;
        }
      }
      ::close(pipe_fds[0]);
    }
  }
  if (pid < 0) {
    // What containerd reports for a container that cannot start.
    std::string message = absl::StrCat(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
        "runc create failed: unable to start container process: ",
        problem, ": unknown");
    rt.pid = -1;
    HandleExit(uid, -1, message);
    return;
  }
  rt.pid = pid;
  rt.pidfd = PidfdOpen(pid);
  rt.started_at = started;
  rt.instances.back().running = true;
  rt.terminating = false;
  const int restarts = static_cast<int>(rt.instances.size()) - 1;
  // Without a readiness probe a running container is ready; with one it starts unready.
  rt.probe = ReadinessProbeOf(container, rt.ip);
  rt.ready = !rt.probe.has_value();
  rt.successes = 0;
  rt.failures = 0;
  if (rt.probe) {
    const size_t instance_index = rt.instances.size() - 1;
    rt.prober = std::make_unique<ProbeWorker>(
        *rt.probe, [this, uid, instance_index](const ProbeResult& result) {
          absl::MutexLock lock(&queue_mu_);
          if (stopping_) return;
          probe_reports_.push_back({uid, instance_index, result});
          Wake();
        });
  }
  const bool ready = rt.ready;
  const std::string unready_message = UnreadyMessage(spec);
  WriteStatus(rt.namespace_, rt.name, [&](json& status) {
    status["phase"] = "Running";
    SetIps(status, rt.ip);
    if (!status.contains("startTime")) status["startTime"] = started;
    SetCondition(status, Condition("PodReadyToStartContainers", true));
    SetCondition(status, Condition("Initialized", true));
    if (ready) {
      SetCondition(status, Condition("ContainersReady", true));
      SetCondition(status, Condition("Ready", true));
    } else {
      SetCondition(status,
                   Condition("ContainersReady", false, "ContainersNotReady", unready_message));
      SetCondition(status, Condition("Ready", false, "ContainersNotReady", unready_message));
    }
    SetCondition(status, Condition("PodScheduled", true));
    SetAllContainers(status, spec, [&](json& cs, bool first) {
      cs["state"] = {{"running", {{"startedAt", started}}}};
      cs["ready"] = ready;
      cs["started"] = true;
      cs["containerID"] = absl::StrCat("containerd://", uid, "-", instance);
      if (first) cs["restartCount"] = restarts;
    });
  });
}

void Kubelet::HandleExit(const std::string& uid, int wait_status,
                         const std::string& start_error_message) {
  auto found = pods_by_uid_.find(uid);
  if (found == pods_by_uid_.end()) return;
  PodRuntime& rt = found->second;
  const bool start_error = wait_status == -1;
  int exit_code = 128;
  int signal = 0;
  if (!start_error) {
    if (WIFEXITED(wait_status)) {
      exit_code = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
      signal = WTERMSIG(wait_status);
      exit_code = 128 + signal;
    }
    // Whatever the command left behind goes with its container.
    ::kill(-rt.pid, SIGKILL);
  }
  if (rt.pidfd >= 0) ::close(rt.pidfd);
  rt.pid = -1;
  rt.pidfd = -1;
  rt.kill_at.reset();
  RetireProber(rt);
  rt.ready = false;
  if (!rt.instances.empty()) rt.instances.back().running = false;
  const std::string instance = std::to_string(rt.instances.empty() ? 0 : rt.instances.size() - 1);
  json terminated = {{"exitCode", exit_code},
                     {"reason", exit_code == 0 ? "Completed" : "Error"},
                     {"startedAt", rt.started_at.empty() ? NowRfc3339() : rt.started_at},
                     {"finishedAt", NowRfc3339()},
                     {"containerID", absl::StrCat("containerd://", uid, "-", instance)}};
  if (signal != 0) terminated["signal"] = signal;
  if (start_error) {
    terminated["reason"] = "StartError";
    terminated["message"] = start_error_message;
    terminated["startedAt"] = "1970-01-01T00:00:00Z";
  }
  auto pod = store_.Get(pods_, rt.namespace_, rt.name);
  if (!pod.ok() || StringField((*pod)->json["metadata"], "uid") != uid) {
    if (uid_by_key_.count(rt.namespace_ + "/" + rt.name) == 0 ||
        uid_by_key_[rt.namespace_ + "/" + rt.name] != uid) {
      Forget(found);
    }
    return;
  }
  const json& object = (*pod)->json;
  const json& spec = object["spec"];
  const bool deleting = rt.terminating || !Field(object["metadata"], "deletionTimestamp").is_null();
  const std::string policy = StringField(spec, "restartPolicy");
  const bool restart =
      !deleting && (policy == "Always" || (policy == "OnFailure" && exit_code != 0));
  if (restart) {
    absl::Duration backoff = rt.backoff;
    rt.restart_at = absl::Now() + backoff;
    rt.backoff = std::min(rt.backoff * 2, kMaxBackoff);
    const std::string container = rt.container;
    const int restarts = static_cast<int>(rt.instances.size());
    const std::string message = absl::StrCat("back-off ", absl::FormatDuration(backoff),
                                             " restarting failed container=", container,
                                             " pod=", rt.name, "_", rt.namespace_, "(", uid, ")");
    WriteStatus(rt.namespace_, rt.name, [&](json& status) {
      SetCondition(status,
                   Condition("ContainersReady", false, "ContainersNotReady", UnreadyMessage(spec)));
      SetCondition(status, Condition("Ready", false, "ContainersNotReady", UnreadyMessage(spec)));
      SetAllContainers(status, spec, [&](json& cs, bool first) {
        if (!first) return;
        cs["lastState"] = {{"terminated", terminated}};
        cs["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", message}}}};
        cs["ready"] = false;
        cs["started"] = false;
        cs["restartCount"] = restarts;
      });
    });
    return;
  }
  rt.finished = true;
  const std::string phase = exit_code == 0 ? "Succeeded" : "Failed";
  WriteStatus(rt.namespace_, rt.name, [&](json& status) {
    status["phase"] = phase;
    SetCondition(status, Condition("PodReadyToStartContainers", false));
    SetCondition(status, Condition("ContainersReady", false, "PodCompleted"));
    SetCondition(status, Condition("Ready", false, "PodCompleted"));
    SetAllContainers(status, spec, [&](json& cs, bool first) {
      json t = terminated;
      if (!first) {
        t["exitCode"] = 0;
        t["reason"] = "Completed";
        t.erase("signal");
      }
      cs["state"] = {{"terminated", t}};
      cs["ready"] = false;
      cs["started"] = false;
    });
  });
  if (deleting) FinalDelete(rt.namespace_, rt.name, uid);
}

std::string Kubelet::AllocateIp() {
  // 127.0.0.2 .. 127.255.255.254, round-robin, skipping addresses pods still hold.
  constexpr uint32_t kFirst = 2, kCount = (1u << 24) - 3;
  for (uint32_t tried = 0; tried < kCount; ++tried) {
    const uint32_t offset = kFirst + (next_ip_++ % kCount);
    if (ips_in_use_.insert(offset).second) {
      return absl::StrCat("127.", (offset >> 16) & 0xff, ".", (offset >> 8) & 0xff, ".",
                          offset & 0xff);
    }
  }
  return kPodIp;  // sixteen million pods: share, as without distinct_pod_ips
}

std::string Kubelet::PrepareVolumes(PodRuntime& rt, const json& spec, const json& container) {
  const fs::path volumes = fs::path(work_dir_) / "pods" /
                           absl::StrCat(rt.namespace_, "_", rt.name, "_", rt.uid) / "volumes";
  if (rt.mounts.empty() && rt.secret_volumes.empty()) {
    std::map<std::string, std::string> dirs;  // volume name → directory
    const json& list = Field(spec, "volumes");
    for (size_t i = 0; list.is_array() && i < list.size(); ++i) {
      const std::string name = StringField(list[i], "name");
      const std::string dir = (volumes / name).string();
      std::error_code ec;
      if (list[i].contains("emptyDir")) {
        fs::create_directories(dir, ec);
        dirs[name] = dir;
      } else if (list[i].contains("secret")) {
        const json& source = list[i]["secret"];
        PodRuntime::SecretVolume volume{StringField(source, "secretName"), dir,
                                        static_cast<int>(IntField(source, "defaultMode", 0644))};
        fs::create_directories(dir, ec);
        ::chmod(dir.c_str(), 0755);
        rt.secret_volumes.push_back(volume);
        dirs[name] = dir;
      }
    }
    const json& mounts = Field(container, "volumeMounts");
    for (size_t i = 0; mounts.is_array() && i < mounts.size(); ++i) {
      auto dir = dirs.find(StringField(mounts[i], "name"));
      if (dir != dirs.end()) rt.mounts[StringField(mounts[i], "mountPath")] = dir->second;
    }
  }
  for (const auto& volume : rt.secret_volumes) {
    if (!ProjectSecret(rt.namespace_, volume)) {
      return absl::StrCat("MountVolume.SetUp failed for volume \"",
                          fs::path(volume.dir).filename().string(), "\" : secret \"", volume.secret,
                          "\" not found");
    }
  }
  return "";
}

bool Kubelet::ProjectSecret(const std::string& namespace_, const PodRuntime::SecretVolume& volume) {
  auto secret = store_.Get(*store_.catalog().Find("", "v1", "secrets"), namespace_, volume.secret);
  if (!secret.ok()) return false;
  const json& data = Field((*secret)->json, "data");
  for (auto it = data.begin(); data.is_object() && it != data.end(); ++it) {
    std::string value;
    absl::Base64Unescape(it->is_string() ? it->get<std::string>() : "", &value);
    const std::string path = absl::StrCat(volume.dir, "/", it.key());
    const std::string temp = absl::StrCat(volume.dir, "/..", it.key(), ".tmp");
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, volume.mode);
    if (fd < 0) continue;
    ::fchmod(fd, volume.mode);
    (void)!::write(fd, value.data(), value.size());
    ::close(fd);
    ::rename(temp.c_str(), path.c_str());
  }
  return true;
}

void Kubelet::Forget(std::map<std::string, PodRuntime>::iterator it) {
  PodRuntime& rt = it->second;
  RetireProber(rt);
  unsigned a, b, c, d;
  if (options_.distinct_pod_ips && std::sscanf(rt.ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) == 4 &&
      a == 127) {
    ips_in_use_.erase((b << 16) | (c << 8) | d);
  }
  pods_by_uid_.erase(it);
}

void Kubelet::RetireProber(PodRuntime& rt) {
  if (!rt.prober) return;
  rt.prober->RequestStop();
  retired_probers_.push_back(std::move(rt.prober));
}

void Kubelet::HandleProbe(const ProbeReport& report) {
  auto it = pods_by_uid_.find(report.uid);
  if (it == pods_by_uid_.end()) return;
  PodRuntime& rt = it->second;
  // A report about an instance that has ended since is stale.
  if (rt.pid <= 0 || !rt.probe || report.instance + 1 != rt.instances.size()) return;
  if (report.result.success) {
    rt.failures = 0;
    ++rt.successes;
    if (!rt.ready && rt.successes >= rt.probe->success_threshold) {
      rt.ready = true;
      WriteReadiness(rt, true);
    }
    return;
  }
  rt.successes = 0;
  ++rt.failures;
  if (options_.events) {
    auto pod = store_.Get(pods_, rt.namespace_, rt.name);
    if (pod.ok() && StringField((*pod)->json["metadata"], "uid") == rt.uid) {
      options_.events->Record(
          {"kubelet", kNodeName}, (*pod)->json, absl::StrCat("spec.containers{", rt.container, "}"),
          "Warning", "Unhealthy", absl::StrCat("Readiness probe failed: ", report.result.output));
    }
  }
  if (rt.ready && rt.failures >= rt.probe->failure_threshold) {
    rt.ready = false;
    WriteReadiness(rt, false);
  }
}

void Kubelet::WriteReadiness(const PodRuntime& rt, bool ready) {
  const std::string uid = rt.uid;
  (void)store_.Mutate(
      pods_, rt.namespace_, rt.name, /*status_write=*/true, Writer::kController, [&](json& pod) {
        if (StringField(pod["metadata"], "uid") != uid) {
          return absl::AbortedError("pod replaced");
        }
        json& status = pod["status"];
        if (!status.is_object()) status = json::object();
        const json& spec = Field(pod, "spec");
        if (ready) {
          SetCondition(status, Condition("ContainersReady", true));
          SetCondition(status, Condition("Ready", true));
        } else {
          SetCondition(status, Condition("ContainersReady", false, "ContainersNotReady",
                                         UnreadyMessage(spec)));
          SetCondition(status,
                       Condition("Ready", false, "ContainersNotReady", UnreadyMessage(spec)));
        }
        SetAllContainers(status, spec, [&](json& cs, bool) { cs["ready"] = ready; });
        return absl::OkStatus();
      });
}

absl::StatusOr<Kubelet::LogSource> Kubelet::Log(const json& pod, const std::string& container,
                                                bool previous) const {
  const json& meta = Field(pod, "metadata");
  const std::string uid = StringField(meta, "uid");
  const std::string name = StringField(meta, "name");
  absl::MutexLock lock(&mu_);
  auto it = pods_by_uid_.find(uid);
  const std::vector<Instance> none;
  const std::vector<Instance>& instances = it != pods_by_uid_.end() ? it->second.instances : none;
  if (it != pods_by_uid_.end() && container != it->second.container) {
    return LogSource{"", false};  // containers after the first are not run
  }
  if (previous) {
    const size_t n = instances.size();
    const bool waiting = it != pods_by_uid_.end() && it->second.restart_at.has_value() && n > 0 &&
                         !instances.back().running;
    if (!waiting && n < 2) {
      return BadRequestError(absl::StrCat("previous terminated container \"", container,
                                          "\" in pod \"", name, "\" not found"));
    }
    return LogSource{instances[waiting ? n - 1 : n - 2].log_path, false};
  }
  if (instances.empty()) {
    std::string reason = "ContainerCreating";
    const json& statuses = Field(Field(pod, "status"), "containerStatuses");
    for (size_t i = 0; statuses.is_array() && i < statuses.size(); ++i) {
      if (StringField(statuses[i], "name") != container) continue;
      std::string r = StringField(Field(Field(statuses[i], "state"), "waiting"), "reason");
      if (!r.empty()) reason = r;
    }
    return BadRequestError(absl::StrCat("container \"", container, "\" in pod \"", name,
                                        "\" is waiting to start: ", reason));
  }
  return LogSource{instances.back().log_path, instances.back().running};
}

std::vector<Kubelet::RunningContainer> Kubelet::Running() const {
  absl::MutexLock lock(&mu_);
  std::vector<RunningContainer> out;
  for (const auto& [uid, rt] : pods_by_uid_) {
    if (rt.pid <= 0 || rt.instances.empty() || !rt.instances.back().running) continue;
    out.push_back({rt.namespace_, rt.name, uid, rt.container, rt.pid});
  }
  return out;
}

}  // namespace submarine::testing::fake_kube
