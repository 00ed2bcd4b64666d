#include "tests/support/fake_yarn/fake_yarn_rm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
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
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/fake_kube/http_server.h"

namespace submarine::testing {

namespace fs = std::filesystem;
using fake_kube::HttpRequest;
using fake_kube::HttpResponder;
using nlohmann::json;

// What the fake keeps about each service and container instance (named, not anonymous: the
// State below holds them, and unity builds include this file into another).
namespace fake_yarn {

// One container of a component instance (an instance re-launched under restart_policy ALWAYS
// gets a new YarnInstance: a new container on the same node, under the same name).
struct YarnInstance {
  std::string component;
  int index = 0;
  std::string name;  // component instance name: <component>-<index>
  std::string container_id;
  std::string user;
  std::string host;  // the node: a loopback address of its own
  std::string state = "INIT";
  pid_t pid = -1;
  bool exited = false;
  bool removed = false;   // flexed away or its service stopped: never re-launched
  int exit_code = -1000;  // ContainerExitStatus.INVALID until it exited
  std::string diagnostics;
  int64_t launch_ms = 0;
  std::string log_dir;
};

struct YarnService {
  json spec;  // as created, number_of_containers as flexed since
  std::string user;
  std::string app_id;
  std::string state = "ACCEPTED";
  int64_t launch_ms = 0;
  bool stopped = false;
  int container_seq = 1;  // container 1 is the service's ApplicationMaster
  std::string am_container_id;
  std::string am_log;  // the AM's serviceam.log
  int64_t next_probe_ms = 0;
  // The current container of every component instance.
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
    if (policy == "ON_FAILURE") {
      return absl::StrCat("restart_policy ", policy, " is not simulated by the fake RM");
    }
    if (c.contains("readiness_check")) {
      const json check = c["readiness_check"];
      const json props = check.is_object() ? check.value("properties", json::object()) : json();
      const std::string type = check.is_object() ? check.value("type", "") : "";
      if (type == "HTTP") {
        if (!props.is_object() || !props.contains("url") || !props["url"].is_string() ||
            !absl::StartsWith(props["url"].get<std::string>(), "http://")) {
          return absl::StrCat("Readiness check of component ", cname, ": URL is not valid");
        }
      } else if (type == "PORT") {
        int port = 0;
        if (!props.is_object() || !props.contains("port") || !props["port"].is_string() ||
            !absl::SimpleAtoi(props["port"].get<std::string>(), &port) || port <= 0 ||
            port > 65535) {
          return absl::StrCat("Readiness check of component ", cname, ": port is not valid");
        }
      } else {
        return absl::StrCat("Invalid readiness check type of component ", cname);
      }
    }
  }
  return "";
}

bool LongLived(const json& component) {
  return component.value("restart_policy", "ALWAYS") == "ALWAYS";
}

std::string Property(const json& configuration, const std::string& key) {
  if (!configuration.is_object()) return "";
  const json props = configuration.value("properties", json::object());
  return props.is_object() && props.contains(key) && props[key].is_string()
             ? props[key].get<std::string>()
             : "";
}

// A log line as the service AM's log4j writes it.
std::string AmLogLine(const std::string& logger, const std::string& text) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::UTCTimeZone()),
                      " INFO  [pool-4-thread-1] ", logger, ": ", text, "\n");
}

// What a readiness check sees, as the AM's HttpProbe and PortProbe report it: "" when it passed.
// Connects to host:port within `timeout`; for an HTTP check, GETs `path` and wants a status in
// [min, max].
std::string ProbeContainer(const std::string& host, int port, const std::string* url,
                           const std::string& path, int min, int max,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now())
               .count()));
  };
  const std::string what = url != nullptr
                               ? absl::StrCat("Probe ", *url, " failed for IP ", host, ": ")
                               : absl::StrCat("Probe port ", port, " failed for IP ", host, ": ");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return what + "java.io.IOException: no socket";
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return what + "java.net.ConnectException: Connection refused";
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms()) <= 0)
      return what + "java.net.SocketTimeoutException: connect timed out";
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) return what + "java.net.ConnectException: Connection refused";
  }
  if (url == nullptr) return "";
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, ":", port,
                                           "\r\nConnection: close\r\n\r\n");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return what + "java.net.SocketException: Broken pipe";
  }
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 512) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left_ms()) <= 0)
      return what + "java.net.SocketTimeoutException: Read timed out";
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> words = absl::StrSplit(head.substr(0, head.find("\r\n")), ' ');
  int code = 0;
  if (words.size() < 2 || !absl::SimpleAtoi(words[1], &code)) {
    return what + "java.io.IOException: Invalid Http response";
  }
  const std::string real_url = absl::StrReplaceAll(*url, {{"${THIS_HOST}", host}});
  if (code < min || code > max) {
    return absl::StrCat("Probe ", real_url, " error code: ", code);
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
  // The NodeManager of every node but 127.0.0.1's (the RM's listener serves that one).
  std::map<std::string, std::unique_ptr<fake_kube::HttpServer>> nodes ABSL_GUARDED_BY(mu);
  uint32_t next_node ABSL_GUARDED_BY(mu) = 2;
  std::vector<json> created ABSL_GUARDED_BY(mu);
  int fail_status ABSL_GUARDED_BY(mu) = 0;
  int fail_count ABSL_GUARDED_BY(mu) = 0;
  std::string fail_path ABSL_GUARDED_BY(mu);
  int64_t served ABSL_GUARDED_BY(mu) = 0;
  int app_seq ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<std::thread> threads ABSL_GUARDED_BY(mu);
  std::thread prober;

  void Handle(const HttpRequest& request, HttpResponder& out);
  void HandleServices(const HttpRequest& request, const std::string& user, HttpResponder& out);
  void HandleFlex(const std::shared_ptr<YarnService>& service_ref, const std::string& component,
                  const std::string& body, HttpResponder& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void HandleApp(const std::string& app_id, HttpResponder& out);
  void HandleSignal(const std::string& id, const std::string& command, HttpResponder& out);
  void HandleNodeManager(const std::vector<std::string>& parts, const std::string& query,
                         HttpResponder& out);
  json Render(const YarnService& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A new component instance (or its next container), on a node of its own unless `host` says.
  std::shared_ptr<YarnInstance> NewContainer(YarnService& service, const std::string& component,
                                             int index, const std::string& host)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::string NewNode() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Launch(const std::shared_ptr<YarnService>& service, YarnInstance& instance)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Wait(std::shared_ptr<YarnService> service, std::shared_ptr<YarnInstance> instance);
  void Kill(std::shared_ptr<YarnInstance> instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Settle(YarnService& service) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void ProbeLoop() ABSL_NO_THREAD_SAFETY_ANALYSIS;  // unlocks while it probes
};

namespace {
const json* ComponentOf(const YarnService& service, const std::string& name) {
  for (const json& c : service.spec["components"]) {
    if (c["name"] == name) return &c;
  }
  return nullptr;
}
bool ServiceFinished(const YarnService& service) {
  return service.state == "SUCCEEDED" || service.state == "FAILED" || service.state == "STOPPED";
}
}  // namespace

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
  state->prober = std::thread([state] { state->ProbeLoop(); });
  return rm;
}

FakeYarnRm::~FakeYarnRm() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
    for (auto& [id, instance] : state_->containers) {
      if (!instance->exited && instance->pid > 0) ::kill(-instance->pid, SIGKILL);
    }
  }
  state_->prober.join();
  state_->server->Stop();
  std::map<std::string, std::unique_ptr<fake_kube::HttpServer>> nodes;
  {
    absl::MutexLock lock(&state_->mu);
    nodes.swap(state_->nodes);
  }
  for (auto& [address, node] : nodes) node->Stop();
  while (true) {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&state_->mu);
      threads.swap(state_->threads);
    }
    if (threads.empty()) break;
    for (std::thread& t : threads) t.join();
  }
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
  } else if (parts.size() == 5 && parts[0] == "ws" && parts[1] == "v1" && parts[2] == "cluster" &&
             parts[3] == "apps" && request.method == "GET") {
    HandleApp(parts[4], out);
  } else if (parts.size() >= 4 && parts[0] == "ws" && parts[1] == "v1" && parts[2] == "node" &&
             request.method == "GET") {
    HandleNodeManager(parts, request.query, out);
  } else {
    RespondDiagnostics(out, 404, absl::StrCat("no such endpoint: ", request.path.substr(0, 100)));
  }
}

std::string FakeYarnRm::State::NewNode() {
  // One loopback address per node, each with its NodeManager on the RM's port; an address some
  // other process holds that port on is skipped.
  while (next_node < (1u << 24) - 1) {
    const uint32_t n = next_node++;
    if ((n & 0xff) == 0 || (n & 0xff) == 0xff) continue;
    const std::string address =
        absl::StrCat("127.", (n >> 16) & 0xff, ".", (n >> 8) & 0xff, ".", n & 0xff);
    auto server = std::make_unique<fake_kube::HttpServer>(
        [this](const HttpRequest& request, HttpResponder& out) { Handle(request, out); });
    if (!server->Bind(address, port).ok()) continue;
    server->Serve();
    nodes[address] = std::move(server);
    return address;
  }
  return "127.0.0.1";
}

std::shared_ptr<YarnInstance> FakeYarnRm::State::NewContainer(YarnService& service,
                                                              const std::string& component,
                                                              int index, const std::string& host) {
  auto instance = std::make_shared<YarnInstance>();
  instance->component = component;
  instance->index = index;
  instance->name = absl::StrCat(component, "-", index);
  instance->user = service.user;
  instance->host = host.empty() ? NewNode() : host;
  // container_<cluster timestamp>_<app>_<attempt>_<container>, as the RM numbers them.
  std::vector<std::string> app = absl::StrSplit(service.app_id, '_');
  instance->container_id = absl::StrCat("container_", app[1], "_", app[2], "_01_",
                                        absl::StrFormat("%06d", ++service.container_seq));
  containers[instance->container_id] = instance;
  return instance;
}

void FakeYarnRm::State::HandleServices(const HttpRequest& request, const std::string& user,
                                       HttpResponder& out) {
  const std::string prefix = "/app/v1/services";
  const std::string rest =
      request.path.size() > prefix.size() + 1 ? request.path.substr(prefix.size() + 1) : "";
  std::vector<std::string> parts = absl::StrSplit(rest, '/', absl::SkipEmpty());
  for (std::string& p : parts) p = fake_kube::PercentDecode(p, false);
  std::string name = parts.empty() ? "" : parts[0];
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
    {
      // The ApplicationMaster: container 1, on the RM's host; its log is serviceam.log.
      auto am = std::make_shared<YarnInstance>();
      am->name = "";
      am->user = user;
      am->host = "127.0.0.1";
      am->container_id = absl::StrCat("container_", cluster_timestamp, "_", app_seq, "_01_000001");
      am->state = "RUNNING";
      am->pid = 0;
      am->launch_ms = service->launch_ms;
      am->log_dir =
          absl::StrCat(options.work_dir, "/", service->app_id, "/", am->container_id, "/logs");
      std::error_code ec;
      fs::create_directories(am->log_dir, ec);
      service->am_log = am->log_dir + "/serviceam.log";
      service->am_container_id = am->container_id;
      containers[am->container_id] = am;
    }
    int64_t interval_s = 30;  // yarn.service.readiness-check-interval.seconds
    const std::string interval = Property(spec.value("configuration", json()),
                                          "yarn.service.readiness-check-interval.seconds");
    if (!interval.empty() && (!absl::SimpleAtoi(interval, &interval_s) || interval_s <= 0)) {
      interval_s = 30;
    }
    service->next_probe_ms = service->launch_ms + interval_s * 1000;
    for (const json& c : spec["components"]) {
      for (int i = 0; i < c["number_of_containers"].get<int>(); ++i) {
        service->instances.push_back(NewContainer(*service, c["name"], i, ""));
      }
    }
    services[name] = service;
    service->state = "STARTED";
    for (auto& instance : service->instances) Launch(service, *instance);
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
  if (parts.size() == 3 && parts[1] == "components" && request.method == "PUT") {
    HandleFlex(it->second, parts[2], request.body, out);
    return;
  }
  if (parts.size() != 1) {
    RespondDiagnostics(out, 404, absl::StrCat("no such endpoint: ", request.path.substr(0, 100)));
    return;
  }
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

// PUT /app/v1/services/{name}/components/{component} {"number_of_containers": N}: flex, as
// the AM's FlexComponentTransition does — new instances take the next ids, flexing down
// destroys the instances with the highest ids (SIGTERM, SIGKILL after the NM's delay).
void FakeYarnRm::State::HandleFlex(const std::shared_ptr<YarnService>& service_ref,
                                   const std::string& component, const std::string& body,
                                   HttpResponder& out) {
  YarnService& service = *service_ref;
  json* spec = nullptr;
  for (json& c : service.spec["components"]) {
    if (c["name"] == component) spec = &c;
  }
  if (spec == nullptr) {
    RespondDiagnostics(out, 404,
                       absl::StrCat("Component ", component.substr(0, 64), " not found in service ",
                                    service.spec["name"].get<std::string>()));
    return;
  }
  const json request = json::parse(body, nullptr, false);
  if (!request.is_object() || !request.contains("number_of_containers") ||
      !request["number_of_containers"].is_number_integer() ||
      request["number_of_containers"].get<int64_t>() < 0) {
    RespondDiagnostics(out, 400, "Invalid number of containers specified");
    return;
  }
  if (ServiceFinished(service)) {
    RespondDiagnostics(out, 400,
                       absl::StrCat("Service ", service.spec["name"].get<std::string>(),
                                    " is not running (", service.state, ")"));
    return;
  }
  const int want = request["number_of_containers"].get<int>();
  const int before = (*spec)["number_of_containers"].get<int>();
  (*spec)["number_of_containers"] = want;
  if (want > before) {
    for (int i = before; i < want; ++i) {
      auto instance = NewContainer(service, component, i, "");
      service.instances.push_back(instance);
      Launch(service_ref, *instance);
    }
  } else {
    for (auto it = service.instances.begin(); it != service.instances.end();) {
      if ((*it)->component == component && (*it)->index >= want) {
        (*it)->removed = true;
        Kill(*it);
        it = service.instances.erase(it);
      } else {
        ++it;
      }
    }
  }
  Settle(service);
  RespondDiagnostics(
      out, 200,
      absl::StrCat("Updating component (", component, ") size from ", before, " to ", want));
}

// The RM's application report, for the AM's container and host (its logs).
void FakeYarnRm::State::HandleApp(const std::string& app_id, HttpResponder& out) {
  absl::MutexLock lock(&mu);
  for (const auto& [name, service] : services) {
    if (service->app_id != app_id) continue;
    const std::string& am = service->am_container_id;
    const bool finished = ServiceFinished(*service);
    RespondJson(
        out, 200,
        {{"app",
          {{"id", app_id},
           {"user", service->user},
           {"name", name},
           {"applicationType", "yarn-service"},
           {"state", finished ? (service->stopped ? "KILLED" : "FINISHED") : "RUNNING"},
           {"amHostHttpAddress", absl::StrCat("127.0.0.1:", port)},
           {"amContainerLogs", absl::StrCat("http://127.0.0.1:", port, "/node/containerlogs/", am,
                                            "/", service->user)}}}});
    return;
  }
  RespondRemoteException(out, 404, "NotFoundException",
                         absl::StrCat("app with id: ", app_id.substr(0, 64), " not found"));
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
                                          const std::string& query, HttpResponder& out) {
  // /ws/v1/node/containers/{id} and /ws/v1/node/containerlogs/{id}/{file}[?size=N]
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
            {"state", instance->exited ? "DONE" : (instance->pid >= 0 ? "RUNNING" : "NEW")},
            {"exitCode", instance->exit_code},
            {"diagnostics", instance->diagnostics},
            {"user", instance->user},
            {"nodeId", absl::StrCat(instance->host, ":", port)},
            {"containerLogFiles", json::array()}};
  }
  {
    // The files of its log directory, as the NodeManager lists them.
    std::set<std::string> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(instance->log_dir, ec)) {
      const std::string file = entry.path().filename().string();
      if (!file.empty() && file[0] != '.') files.insert(file);
    }
    for (const std::string& file : files) info["containerLogFiles"].push_back(file);
  }
  if (parts.size() == 5 && parts[3] == "containers") {
    RespondJson(out, 200, {{"container", info}});
    return;
  }
  // Any file of the container's log directory, as the NodeManager serves them.
  if (parts.size() == 6 && parts[3] == "containerlogs" && !parts[5].empty() &&
      parts[5].find('/') == std::string::npos && parts[5] != "." && parts[5] != "..") {
    std::ifstream in(instance->log_dir + "/" + parts[5], std::ios::binary);
    if (!in) {
      RespondRemoteException(out, 404, "NotFoundException",
                             absl::StrCat("Cannot find this log on the local disk: ", parts[5]));
      return;
    }
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    // size: that many bytes from the start, or from the end when negative.
    int64_t size = 0;
    if (absl::SimpleAtoi(QueryValue(query, "size"), &size) && size != 0) {
      const int64_t n = static_cast<int64_t>(text.size());
      text = size > 0 ? text.substr(0, std::min(n, size))
                      : text.substr(static_cast<size_t>(std::max<int64_t>(0, n + size)));
    }
    out.Respond(200, "text/plain", text);
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
  const bool finished = ServiceFinished(service);
  for (json& c : out["components"]) {
    json list = json::array();
    bool all_ended = true;
    bool all_succeeded = true;
    bool all_ready = true;
    for (const auto& instance : service.instances) {
      if (instance->component != c["name"]) continue;
      all_ended = all_ended && instance->exited;
      all_succeeded = all_succeeded && instance->exited && instance->exit_code == 0;
      all_ready = all_ready && instance->state == "READY";
      if (finished && options.forget_containers_when_finished) continue;
      list.push_back(
          {{"id", instance->container_id},
           {"state", instance->state},
           {"launch_time", instance->launch_ms},
           {"ip", instance->host},
           {"hostname", absl::StrCat(instance->name, ".", service.spec["name"].get<std::string>(),
                                     ".", service.user, ".", options.domain)},
           {"bare_host", instance->host},
           {"component_instance_name", instance->name}});
    }
    c["containers"] = list;
    if (LongLived(c)) {
      c["state"] = all_ready ? "STABLE" : "FLEXING";
    } else {
      c["state"] = !all_ended ? "STABLE" : (all_succeeded ? "SUCCEEDED" : "FAILED");
    }
  }
  return out;
}

void FakeYarnRm::State::Launch(const std::shared_ptr<YarnService>& service_ref,
                               YarnInstance& instance) {
  if (stopping) return;
  YarnService& service = *service_ref;
  const std::string name = service.spec["name"];
  const std::string base =
      absl::StrCat(options.work_dir, "/", service.app_id, "/", instance.container_id);
  instance.log_dir = base + "/logs";
  const std::string work = base + "/work";
  // The application's directory on the node, shared by its containers there (LOCAL_DIRS).
  const std::string app_local =
      absl::StrCat(options.work_dir, "/nodes/", instance.host, "/usercache/", service.user,
                   "/appcache/", service.app_id);
  std::error_code ec;
  fs::create_directories(instance.log_dir, ec);
  fs::create_directories(work, ec);
  fs::create_directories(app_local, ec);
  const json* component = ComponentOf(service, instance.component);
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
  env["LOCAL_DIRS"] = app_local;
  env["NM_HOST"] = instance.host;
  env["NM_HTTP_PORT"] = absl::StrCat(port);
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
  // With a readiness check, READY only once it passed; without, once running (YARN's default
  // probe only waits for the container's IP).
  instance.state = component->contains("readiness_check") ? "RUNNING_BUT_UNREADY" : "READY";
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
  instance->state = service->stopped || instance->removed
                        ? "STOPPED"
                        : (instance->exit_code == 0 ? "SUCCEEDED" : "FAILED");
  Settle(*service);
  const json* component = ComponentOf(*service, instance->component);
  if (component == nullptr || !LongLived(*component) || service->stopped || instance->removed) {
    return;
  }
  // restart_policy ALWAYS: the instance gets a new container on its node after the delay,
  // whatever the exit code, unless it was flexed away or the service stopped meanwhile.
  struct Waiting {
    const State* state;
    const YarnService* service;
    const YarnInstance* instance;
    bool Over() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return state->stopping || service->stopped || instance->removed;
    }
  } waiting{this, service.get(), instance.get()};
  mu.AwaitWithTimeout(absl::Condition(&waiting, &Waiting::Over),
                      absl::FromChrono(options.relaunch_delay));
  if (stopping || service->stopped || instance->removed) return;
  auto current = std::find(service->instances.begin(), service->instances.end(), instance);
  if (current == service->instances.end()) return;
  {
    std::ofstream(service->am_log, std::ios::app)
        << AmLogLine("instance.ComponentInstance",
                     absl::StrCat("[COMPINSTANCE ", instance->name, " : ", instance->container_id,
                                  "]: ", instance->container_id,
                                  " completed. Reinsert back to pending list and requested a "
                                  "new container. exitStatus=",
                                  instance->exit_code));
  }
  auto next = NewContainer(*service, instance->component, instance->index, instance->host);
  *current = next;
  Launch(service, *next);
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
  bool long_lived = false;
  for (const json& c : service.spec["components"]) long_lived = long_lived || LongLived(c);
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
  } else if (all_ended && !long_lived) {
    service.state = all_succeeded ? "SUCCEEDED" : "FAILED";
  } else {
    service.state = all_ready ? "STABLE" : "STARTED";
  }
  if (ServiceFinished(service)) {
    // The ApplicationMaster exits with its service.
    auto am = containers.find(service.am_container_id);
    if (am != containers.end() && !am->second->exited) {
      am->second->exited = true;
      am->second->exit_code = 0;
      am->second->state = "DONE";
    }
  }
}

// The services' readiness checks, as the AM's ServiceMonitor runs them: every
// yarn.service.readiness-check-interval.seconds, each live container of a component with a
// readiness_check is probed; RUNNING_BUT_UNREADY → READY once it passes, READY →
// RUNNING_BUT_UNREADY when it fails; every failure is logged in the AM's serviceam.log (the only
// place YARN reports why). Probes run without the lock, so requests are never held up by them.
void FakeYarnRm::State::ProbeLoop() {
  struct Target {
    std::shared_ptr<YarnService> service;
    std::shared_ptr<YarnInstance> instance;
    std::string type, url, path;
    int port = 0, min = 200, max = 299;
  };
  absl::MutexLock lock(&mu);
  while (!stopping) {
    const int64_t now = NowMs();
    int64_t next = now + 1000;
    std::vector<Target> targets;
    for (auto& [name, service] : services) {
      if (ServiceFinished(*service)) continue;
      if (service->next_probe_ms > now) {
        next = std::min(next, service->next_probe_ms);
        continue;
      }
      int64_t interval_s = 30;
      const std::string interval = Property(service->spec.value("configuration", json()),
                                            "yarn.service.readiness-check-interval.seconds");
      if (!interval.empty() && (!absl::SimpleAtoi(interval, &interval_s) || interval_s <= 0)) {
        interval_s = 30;
      }
      service->next_probe_ms = now + interval_s * 1000;
      next = std::min(next, service->next_probe_ms);
      for (auto& instance : service->instances) {
        const json* component = ComponentOf(*service, instance->component);
        if (instance->exited || instance->pid <= 0 || component == nullptr ||
            !component->contains("readiness_check")) {
          continue;
        }
        const json& check = (*component)["readiness_check"];
        const json props = check.value("properties", json::object());
        Target t{service, instance, check.value("type", "")};
        if (t.type == "HTTP") {
          t.url = props.value("url", "");
          // http://${THIS_HOST}:<port><path>
          const std::string after = t.url.substr(std::string("http://").size());
          const size_t slash = after.find('/');
          const std::string hostport = after.substr(0, slash);
          t.path = slash == std::string::npos ? "/" : after.substr(slash);
          const size_t colon = hostport.rfind(':');
          if (colon == std::string::npos ||
              !absl::SimpleAtoi(hostport.substr(colon + 1), &t.port)) {
            t.port = 80;
          }
          (void)absl::SimpleAtoi(props.value("min.success", "200"), &t.min);
          (void)absl::SimpleAtoi(props.value("max.success", "299"), &t.max);
        } else {
          (void)absl::SimpleAtoi(props.value("port", "0"), &t.port);
        }
        targets.push_back(std::move(t));
      }
    }
    if (!targets.empty()) {
      mu.Unlock();
      std::vector<std::string> results;
      for (const Target& t : targets) {
        results.push_back(ProbeContainer(t.instance->host, t.port,
                                         t.type == "HTTP" ? &t.url : nullptr, t.path, t.min, t.max,
                                         std::chrono::milliseconds(1000)));
      }
      mu.Lock();
      for (size_t i = 0; i < targets.size(); ++i) {
        YarnService& service = *targets[i].service;
        YarnInstance& instance = *targets[i].instance;
        if (instance.exited || service.stopped) continue;
        if (results[i].empty()) {
          if (instance.state == "RUNNING_BUT_UNREADY") {
            instance.state = "READY";
            std::ofstream(service.am_log, std::ios::app) << AmLogLine(
                "monitor.ServiceMonitor",
                absl::StrCat("Readiness check succeeded for ", instance.name, ": Success"));
          }
        } else {
          if (instance.state == "READY") instance.state = "RUNNING_BUT_UNREADY";
          std::ofstream(service.am_log, std::ios::app) << AmLogLine(
              "monitor.ServiceMonitor",
              absl::StrCat("Readiness check failed for ", instance.name, ": Failure in ",
                           targets[i].type == "HTTP"
                               ? absl::StrCat("Http probe of ", targets[i].url, " [",
                                              targets[i].min, "-", targets[i].max, "]")
                               : absl::StrCat("Port probe of ", targets[i].port),
                           ": java.io.IOException: ", results[i]));
        }
        Settle(service);
      }
      continue;  // the clock moved while probing
    }
    mu.AwaitWithTimeout(absl::Condition(&stopping),
                        absl::Milliseconds(std::max<int64_t>(1, next - NowMs())));
  }
}

}  // namespace submarine::testing
