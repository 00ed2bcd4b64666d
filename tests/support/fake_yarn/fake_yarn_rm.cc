#include "tests/support/fake_yarn/fake_yarn_rm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/support/fake_kube/http_server.h"

namespace submarine::testing {

namespace fs = std::filesystem;
using fake_kube::HttpRequest;
using fake_kube::HttpResponder;
using nlohmann::json;

// What the fake keeps about each service and container instance (named, not anonymous: the
// State below holds them, and unity builds include this file into another).
namespace fake_yarn {

struct YarnInstance {
  std::string component;
  int index = 0;
  std::string name;  // component instance name: <component>-<index>
  std::string container_id;
  std::string user;
  std::string state = "INIT";
  pid_t pid = -1;
  bool exited = false;
  int exit_code = -1000;  // ContainerExitStatus.INVALID until it exited
  std::string diagnostics;
  int64_t launch_ms = 0;
  std::string log_dir;
};

struct YarnService {
  json spec;  // as created
  std::string user;
  std::string app_id;
  std::string state = "ACCEPTED";
  int64_t launch_ms = 0;
  bool stopped = false;
  std::vector<std::shared_ptr<YarnInstance>> instances;
};

}  // namespace fake_yarn

using fake_yarn::YarnInstance;
using fake_yarn::YarnService;

namespace {

constexpr char kJson[] = "application/json";
constexpr int kNoExitCode = -1000;  // ContainerExitStatus.INVALID

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

bool YarnName(const std::string& name) {
  static const std::regex kName("[a-z][a-z0-9-]{0,62}");
  return std::regex_match(name, kName);
}

void RespondJson(HttpResponder& out, int status, const json& body) {
  out.Respond(status, kJson, body.dump());
}

void RespondDiagnostics(HttpResponder& out, int status, const std::string& diagnostics) {
  RespondJson(out, status, {{"diagnostics", diagnostics}});
}

// The NodeManager's error form.
void RespondRemoteException(HttpResponder& out, int status, const std::string& exception,
                            const std::string& message) {
  RespondJson(out, status,
              {{"RemoteException",
                {{"exception", exception},
                 {"message", message},
                 {"javaClassName", absl::StrCat("org.apache.hadoop.yarn.webapp.", exception)}}}});
}

std::string QueryValue(const std::string& query, const std::string& key) {
  for (absl::string_view part : absl::StrSplit(query, '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (fake_kube::PercentDecode(kv.first, true) == key) {
      return fake_kube::PercentDecode(kv.second, true);
    }
  }
  return "";
}

std::string Substitute(const std::string& text, const std::map<std::string, std::string>& tokens) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [k, v] : tokens) pairs.emplace_back(absl::StrCat("${", k, "}"), v);
  return absl::StrReplaceAll(text, pairs);
}

std::string ValidateSpec(const json& spec) {
  if (!spec.is_object()) return "Invalid service definition: not a JSON object";
  const std::string name = spec.value("name", "");
  if (name.empty()) return "Service name is not specified";
  if (!YarnName(name)) {
    return absl::StrCat("Invalid service name \"", name.substr(0, 64),
                        "\": names must match [a-z][a-z0-9-]* and be at most 63 characters");
  }
  if (!spec.contains("version") || !spec["version"].is_string() ||
      spec["version"].get<std::string>().empty()) {
    return "Version of service is not specified";
  }
  if (!spec.contains("components") || !spec["components"].is_array() ||
      spec["components"].empty()) {
    return "No component specified for " + name;
  }
  std::set<std::string> seen;
  for (const json& c : spec["components"]) {
    if (!c.is_object()) return "Invalid component definition";
    const std::string cname = c.value("name", "");
    if (!YarnName(cname))
      return absl::StrCat("Invalid component name \"", cname.substr(0, 64), "\"");
    if (!seen.insert(cname).second) return absl::StrCat("Component name ", cname, " is not unique");
    if (!c.contains("number_of_containers") || !c["number_of_containers"].is_number_integer() ||
        c["number_of_containers"].get<int64_t>() < 0) {
      return absl::StrCat("Number of containers for component ", cname,
                          " is not specified or is negative");
    }
    if (c.value("launch_command", "").empty()) {
      return absl::StrCat("No launch command specified for component ", cname);
    }
    const json resource = c.value("resource", json());
    if (!resource.is_object()) {
      return absl::StrCat("Resource of component ", cname, " is not specified");
    }
    if (!resource.contains("cpus") || !resource["cpus"].is_number_integer() ||
        resource["cpus"].get<int64_t>() <= 0) {
      return absl::StrCat("Invalid number of cpus for component ", cname);
    }
    const json memory = resource.value("memory", json());
    if (!memory.is_string() || std::atoll(memory.get<std::string>().c_str()) <= 0) {
      return absl::StrCat("Invalid memory of component ", cname);
    }
    const std::string policy = c.value("restart_policy", "ALWAYS");
    if (policy != "ALWAYS" && policy != "ON_FAILURE" && policy != "NEVER") {
      return absl::StrCat("Invalid restart_policy ", policy.substr(0, 20), " of component ", cname);
    }
    if (policy != "NEVER") {
      return absl::StrCat("restart_policy ", policy, " is not simulated by the fake RM");
    }
  }
  return "";
}

std::map<std::string, std::string> EnvOf(const json& configuration) {
  std::map<std::string, std::string> out;
  if (!configuration.is_object()) return out;
  const json env = configuration.value("env", json::object());
  for (const auto& [k, v] : env.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

struct FakeYarnRm::State {
  FakeYarnOptions options;
  std::unique_ptr<fake_kube::HttpServer> server;
  int port = 0;
  int64_t cluster_timestamp = NowMs();

  mutable absl::Mutex mu;
  std::map<std::string, std::shared_ptr<YarnService>> services ABSL_GUARDED_BY(mu);
  // Every container ever started, by id (the NodeManager's view; kept after the service).
  std::map<std::string, std::shared_ptr<YarnInstance>> containers ABSL_GUARDED_BY(mu);
  std::vector<json> created ABSL_GUARDED_BY(mu);
  int fail_status ABSL_GUARDED_BY(mu) = 0;
  int fail_count ABSL_GUARDED_BY(mu) = 0;
  std::string fail_path ABSL_GUARDED_BY(mu);
  int64_t served ABSL_GUARDED_BY(mu) = 0;
  int app_seq ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<std::thread> threads ABSL_GUARDED_BY(mu);

  void Handle(const HttpRequest& request, HttpResponder& out);
  void HandleServices(const HttpRequest& request, const std::string& user, HttpResponder& out);
  void HandleSignal(const std::string& id, const std::string& command, HttpResponder& out);
  void HandleNodeManager(const std::vector<std::string>& parts, HttpResponder& out);
  json Render(const YarnService& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Launch(YarnService& service, YarnInstance& instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Wait(std::shared_ptr<YarnService> service, std::shared_ptr<YarnInstance> instance);
  void Kill(std::shared_ptr<YarnInstance> instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Settle(YarnService& service) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

absl::StatusOr<std::unique_ptr<FakeYarnRm>> FakeYarnRm::Start(FakeYarnOptions options) {
  if (options.work_dir.empty()) return absl::InvalidArgumentError("work_dir is required");
  std::error_code ec;
  fs::create_directories(options.work_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", options.work_dir));
  std::unique_ptr<FakeYarnRm> rm(new FakeYarnRm());
  rm->state_ = std::make_unique<State>();
  State* state = rm->state_.get();
  state->options = std::move(options);
  state->server = std::make_unique<fake_kube::HttpServer>(
      [state](const HttpRequest& request, HttpResponder& out) { state->Handle(request, out); });
  auto port = state->server->Bind();
  if (!port.ok()) return port.status();
  state->port = *port;
  state->server->Serve();
  return rm;
}

FakeYarnRm::~FakeYarnRm() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
    for (auto& [id, instance] : state_->containers) {
      if (!instance->exited && instance->pid > 0) ::kill(-instance->pid, SIGKILL);
    }
  }
  state_->server->Stop();
  {
    absl::MutexLock lock(&state_->mu);
    threads.swap(state_->threads);
  }
  for (std::thread& t : threads) t.join();
}

std::string FakeYarnRm::url() const { return absl::StrCat("http://127.0.0.1:", state_->port); }
int FakeYarnRm::port() const { return state_->port; }

void FakeYarnRm::FailRequests(int http_status, int count, const std::string& path_substring) {
  absl::MutexLock lock(&state_->mu);
  state_->fail_status = http_status;
  state_->fail_count = count;
  state_->fail_path = path_substring;
}

std::vector<json> FakeYarnRm::created() const {
  absl::MutexLock lock(&state_->mu);
  return state_->created;
}

int64_t FakeYarnRm::requests_served() const {
  absl::MutexLock lock(&state_->mu);
  return state_->served;
}

void FakeYarnRm::State::Handle(const HttpRequest& request, HttpResponder& out) {
  {
    absl::MutexLock lock(&mu);
    ++served;
    if (fail_count > 0 && absl::StrContains(request.path, fail_path)) {
      --fail_count;
      RespondDiagnostics(out, fail_status, "injected failure");
      return;
    }
  }
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(request.path, '/', absl::SkipEmpty())) {
    parts.push_back(fake_kube::PercentDecode(std::string(p), false));
  }
  std::string user = QueryValue(request.query, "user.name");
  if (user.empty()) user = "dr.who";
  if (parts.size() >= 3 && parts[0] == "app" && parts[1] == "v1" && parts[2] == "services") {
    HandleServices(request, user, out);
  } else if (parts.size() == 7 && parts[0] == "ws" && parts[1] == "v1" && parts[2] == "cluster" &&
             parts[3] == "containers" && parts[5] == "signal" && request.method == "POST") {
    HandleSignal(parts[4], parts[6], out);
  } else if (parts.size() >= 4 && parts[0] == "ws" && parts[1] == "v1" && parts[2] == "node" &&
             request.method == "GET") {
    HandleNodeManager(parts, out);
  } else {
    RespondDiagnostics(out, 404, absl::StrCat("no such endpoint: ", request.path.substr(0, 100)));
  }
}

void FakeYarnRm::State::HandleServices(const HttpRequest& request, const std::string& user,
                                       HttpResponder& out) {
  const std::string prefix = "/app/v1/services";
  std::string name = request.path.size() > prefix.size() + 1
                         ? fake_kube::PercentDecode(request.path.substr(prefix.size() + 1), false)
                         : "";
  absl::MutexLock lock(&mu);
  if (name.empty()) {
    if (request.method != "POST") {
      RespondDiagnostics(out, 405, "only POST is served on /app/v1/services");
      return;
    }
    json spec = json::parse(request.body, nullptr, false);
    const std::string invalid = ValidateSpec(spec);
    if (!invalid.empty()) {
      RespondDiagnostics(out, 400, invalid);
      return;
    }
    name = spec["name"];
    if (services.count(name) > 0) {
      RespondDiagnostics(
          out, 400,
          absl::StrCat("Failed to create service ", name, ", because it already exists."));
      return;
    }
    created.push_back(spec);
    auto service = std::make_shared<YarnService>();
    service->spec = spec;
    service->user = user;
    service->app_id = absl::StrCat("application_", cluster_timestamp, "_", ++app_seq);
    service->launch_ms = NowMs();
    int seq = 1;  // container 1 is the service's ApplicationMaster
    for (const json& c : spec["components"]) {
      for (int i = 0; i < c["number_of_containers"].get<int>(); ++i) {
        auto instance = std::make_shared<YarnInstance>();
        instance->component = c["name"];
        instance->index = i;
        instance->name = absl::StrCat(instance->component, "-", i);
        instance->user = user;
        instance->container_id = absl::StrCat("container_", cluster_timestamp, "_", app_seq, "_01_",
                                              absl::StrFormat("%06d", ++seq));
        service->instances.push_back(instance);
        containers[instance->container_id] = instance;
      }
    }
    services[name] = service;
    service->state = "STARTED";
    for (auto& instance : service->instances) Launch(*service, *instance);
    Settle(*service);
    RespondJson(out, 202,
                {{"uri", absl::StrCat(prefix, "/", name)},
                 {"diagnostics", absl::StrCat("Application ID: ", service->app_id)}});
    return;
  }
  auto it = services.find(name);
  if (it == services.end()) {
    RespondDiagnostics(out, 404, absl::StrCat("Service ", name.substr(0, 64), " not found"));
    return;
  }
  YarnService& service = *it->second;
  if (request.method == "GET") {
    RespondJson(out, 200, Render(service));
  } else if (request.method == "PUT") {
    json body = json::parse(request.body, nullptr, false);
    if (!body.is_object() || body.value("state", "") != "STOPPED") {
      RespondDiagnostics(out, 400, "the fake RM serves PUT {\"state\": \"STOPPED\"} only");
      return;
    }
    if (!service.stopped && service.state != "SUCCEEDED" && service.state != "FAILED") {
      service.stopped = true;
      service.state = "STOPPED";
      for (auto& instance : service.instances) Kill(instance);
    }
    RespondDiagnostics(out, 200, absl::StrCat("Service ", name, " is successfully stopped."));
  } else if (request.method == "DELETE") {
    service.stopped = true;
    for (auto& instance : service.instances) Kill(instance);
    services.erase(it);
    RespondDiagnostics(out, 200, absl::StrCat("Successfully destroyed service ", name));
  } else {
    RespondDiagnostics(out, 405, "method not allowed");
  }
}

void FakeYarnRm::State::HandleSignal(const std::string& id, const std::string& command,
                                     HttpResponder& out) {
  absl::MutexLock lock(&mu);
  auto it = containers.find(id);
  if (it == containers.end()) {
    RespondRemoteException(out, 404, "NotFoundException",
                           absl::StrCat("container ", id.substr(0, 64), " not found"));
    return;
  }
  int sig = 0;
  if (command == "GRACEFUL_SHUTDOWN") sig = SIGTERM;
  if (command == "FORCEFUL_SHUTDOWN") sig = SIGKILL;
  if (command == "OUTPUT_THREAD_DUMP") sig = SIGQUIT;
  if (sig == 0) {
    RespondRemoteException(out, 400, "BadRequestException",
                           absl::StrCat("Invalid command: ", command.substr(0, 32)));
    return;
  }
  YarnInstance& instance = *it->second;
  if (!instance.exited && instance.pid > 0) ::kill(-instance.pid, sig);
  out.Respond(200, kJson, "");
}

void FakeYarnRm::State::HandleNodeManager(const std::vector<std::string>& parts,
                                          HttpResponder& out) {
  // /ws/v1/node/containers/{id} and /ws/v1/node/containerlogs/{id}/{file}
  std::shared_ptr<YarnInstance> instance;
  json info;
  {
    absl::MutexLock lock(&mu);
    auto found = parts.size() >= 5 ? containers.find(parts[4]) : containers.end();
    if (found == containers.end()) {
      RespondRemoteException(out, 404, "NotFoundException", "container not found");
      return;
    }
    instance = found->second;
    info = {{"id", instance->container_id},
            {"state", instance->exited ? "DONE" : (instance->pid > 0 ? "RUNNING" : "NEW")},
            {"exitCode", instance->exit_code},
            {"diagnostics", instance->diagnostics},
            {"user", instance->user},
            {"nodeId", absl::StrCat("127.0.0.1:", port)},
            {"containerLogFiles", {"stderr", "stdout"}}};
  }
  if (parts.size() == 5 && parts[3] == "containers") {
    RespondJson(out, 200, {{"container", info}});
    return;
  }
  if (parts.size() == 6 && parts[3] == "containerlogs" &&
      (parts[5] == "stdout" || parts[5] == "stderr")) {
    std::ifstream in(instance->log_dir + "/" + parts[5], std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    out.Respond(200, "text/plain", s.str());
    return;
  }
  RespondRemoteException(out, 404, "NotFoundException", "no such NodeManager resource");
}

json FakeYarnRm::State::Render(const YarnService& service) const {
  json out = service.spec;
  out["id"] = service.app_id;
  out["state"] = service.state;
  out["launch_time"] = service.launch_ms;
  if (!out.contains("lifetime")) out["lifetime"] = -1;
  const bool finished =
      service.state == "SUCCEEDED" || service.state == "FAILED" || service.state == "STOPPED";
  for (json& c : out["components"]) {
    json list = json::array();
    bool all_ended = true;
    bool all_succeeded = true;
    for (const auto& instance : service.instances) {
      if (instance->component != c["name"]) continue;
      all_ended = all_ended && instance->exited;
      all_succeeded = all_succeeded && instance->exited && instance->exit_code == 0;
      if (finished && options.forget_containers_when_finished) continue;
      list.push_back(
          {{"id", instance->container_id},
           {"state", instance->state},
           {"launch_time", instance->launch_ms},
           {"ip", "127.0.0.1"},
           {"hostname", absl::StrCat(instance->name, ".", service.spec["name"].get<std::string>(),
                                     ".", service.user, ".", options.domain)},
           {"bare_host", "127.0.0.1"},
           {"component_instance_name", instance->name}});
    }
    c["containers"] = list;
    c["state"] = !all_ended ? "STABLE" : (all_succeeded ? "SUCCEEDED" : "FAILED");
  }
  return out;
}

void FakeYarnRm::State::Launch(YarnService& service, YarnInstance& instance) {
  const std::string name = service.spec["name"];
  const std::string base =
      absl::StrCat(options.work_dir, "/", service.app_id, "/", instance.container_id);
  instance.log_dir = base + "/logs";
  const std::string work = base + "/work";
  std::error_code ec;
  fs::create_directories(instance.log_dir, ec);
  fs::create_directories(work, ec);
  const json* component = nullptr;
  for (const json& c : service.spec["components"]) {
    if (c["name"] == instance.component) component = &c;
  }
  const std::map<std::string, std::string> tokens = {{"SERVICE_NAME", name},
                                                     {"SERVICE_NAME_LC", name},
                                                     {"USER", service.user},
                                                     {"DOMAIN", options.domain},
                                                     {"COMPONENT_NAME", instance.component},
                                                     {"COMPONENT_NAME_LC", instance.component},
                                                     {"COMPONENT_INSTANCE_NAME", instance.name},
                                                     {"COMPONENT_ID", absl::StrCat(instance.index)},
                                                     {"CONTAINER_ID", instance.container_id}};
  std::map<std::string, std::string> env;
  for (const char* key : {"PATH", "HOME", "LANG"}) {
    if (const char* v = std::getenv(key)) env[key] = v;
  }
  for (const auto& [k, v] : EnvOf(service.spec.value("configuration", json()))) env[k] = v;
  for (const auto& [k, v] : EnvOf(component->value("configuration", json()))) env[k] = v;
  for (auto& [k, v] : env) v = Substitute(v, tokens);
  env["CONTAINER_ID"] = instance.container_id;
  env["USER"] = service.user;
  env["LOG_DIRS"] = instance.log_dir;
  env["PWD"] = work;
  const std::string command = Substitute(component->value("launch_command", ""), tokens);

  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string bash = "/bin/bash";
  std::string dash_c = "-c";
  std::string cmd = command;
  char* argv[] = {bash.data(), dash_c.data(), cmd.data(), nullptr};
  const std::string out_path = instance.log_dir + "/stdout";
  const std::string err_path = instance.log_dir + "/stderr";

  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int in = open("/dev/null", O_RDONLY);
    int so = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int se = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || so < 0 || se < 0 || chdir(work.c_str()) != 0) _exit(127);
    dup2(in, 0);
    dup2(so, 1);
    dup2(se, 2);
    close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  if (pid < 0) {
    instance.exited = true;
    instance.state = "FAILED";
    instance.exit_code = -1;
    instance.diagnostics = "cannot fork the container process";
    return;
  }
  setpgid(pid, pid);
  instance.pid = pid;
  instance.launch_ms = NowMs();
  instance.state = "READY";  // no readiness check: ready once running
  std::shared_ptr<YarnService> service_ref = services[name];
  std::shared_ptr<YarnInstance> instance_ref = containers[instance.container_id];
  threads.emplace_back([this, service_ref, instance_ref] { Wait(service_ref, instance_ref); });
}

void FakeYarnRm::State::Wait(std::shared_ptr<YarnService> service,
                             std::shared_ptr<YarnInstance> instance) {
  int status = 0;
  while (waitpid(instance->pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(-instance->pid, SIGKILL);  // what the command left in its group
  absl::MutexLock lock(&mu);
  instance->exited = true;
  if (WIFEXITED(status)) {
    instance->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    instance->exit_code = 128 + WTERMSIG(status);
    instance->diagnostics =
        absl::StrCat("Container killed on request. Exit code is ", instance->exit_code);
  }
  if (instance->exit_code != 0 && instance->diagnostics.empty()) {
    instance->diagnostics =
        absl::StrCat("Exception from container-launch.\nExit code: ", instance->exit_code);
  }
  instance->state =
      service->stopped ? "STOPPED" : (instance->exit_code == 0 ? "SUCCEEDED" : "FAILED");
  Settle(*service);
}

void FakeYarnRm::State::Kill(std::shared_ptr<YarnInstance> instance) {
  if (instance->exited || instance->pid <= 0 || stopping) return;
  ::kill(-instance->pid, SIGTERM);
  const absl::Duration delay = absl::FromChrono(options.sigkill_delay);
  threads.emplace_back([this, instance, delay] {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](YarnInstance* i) { return i->exited; }, instance.get()),
                        delay);
    if (!instance->exited) ::kill(-instance->pid, SIGKILL);
  });
}

void FakeYarnRm::State::Settle(YarnService& service) {
  if (service.state == "SUCCEEDED" || service.state == "FAILED") return;
  bool all_ended = true;
  bool all_succeeded = true;
  bool all_ready = true;
  for (const auto& instance : service.instances) {
    all_ended = all_ended && instance->exited;
    all_succeeded = all_succeeded && instance->exit_code == 0;
    all_ready = all_ready && instance->state == "READY";
  }
  if (service.stopped) {
    service.state = "STOPPED";
  } else if (all_ended) {
    service.state = all_succeeded ? "SUCCEEDED" : "FAILED";
  } else if (all_ready) {
    service.state = "STABLE";
  }
}

}  // namespace submarine::testing
