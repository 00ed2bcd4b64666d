#include "tests/support/fake_kube/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 10 * 1024;  // the kubelet reads at most this much of a body

// Go's text for an errno ("connection refused"): strerror, lower-cased as Go's table has it.
std::string GoErrno(int err) {
  std::string text = std::strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

// Milliseconds left until `deadline` (at least 0), for poll.
int MillisLeft(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
}

// A connected TCP socket to host:port, or -1 with `*error` set as Go's net.Dial words it.
int Dial(const std::string& host, int port, absl::Time deadline, std::string* error) {
  const std::string address = absl::StrCat(host, ":", port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    *error = absl::StrCat("dial tcp: lookup ", host, ": no such host");
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = absl::StrCat("dial tcp ", address, ": socket: ", GoErrno(errno));
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      *error = absl::StrCat("dial tcp ", address, ": connect: ", GoErrno(errno));
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, MillisLeft(deadline));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      *error = absl::StrCat("dial tcp ", address, ": i/o timeout");
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      *error = absl::StrCat("dial tcp ", address, ": connect: ", GoErrno(err));
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

ProbeResult ProbeTcp(const ProbeSpec& spec) {
  std::string error;
  int fd = Dial(spec.host, spec.port, absl::Now() + spec.timeout, &error);
  if (fd < 0) return {false, error};
  ::close(fd);
  return {true, ""};
}

ProbeResult ProbeHttp(const ProbeSpec& spec) {
  const absl::Time deadline = absl::Now() + spec.timeout;
  const std::string host_port = absl::StrCat(spec.host, ":", spec.port);
  const std::string url = absl::StrCat("http://", host_port, spec.path);
  auto failed = [&](const std::string& why) {
    return ProbeResult{false, absl::StrCat("Get \"", url, "\": ", why)};
  };
  std::string error;
  int fd = Dial(spec.host, spec.port, deadline, &error);
  if (fd < 0) return failed(error);
  std::string host_header = host_port, user_agent = "kube-probe/1.32", accept = "*/*";
  std::string extra;
  for (const auto& [name, value] : spec.headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "host") {
      host_header = value;
    } else if (lower == "user-agent") {
      user_agent = value;
    } else if (lower == "accept") {
      accept = value;
    } else {
      absl::StrAppend(&extra, name, ": ", value, "\r\n");
    }
  }
  const std::string request = absl::StrCat("GET ", spec.path, " HTTP/1.1\r\nHost: ", host_header,
                                           "\r\nUser-Agent: ", user_agent, "\r\nAccept: ", accept,
                                           "\r\n", extra, "Connection: close\r\n\r\n");
  size_t sent = 0;
  std::string response;
  int code = -1;
  bool timed_out = false;
  while (true) {
    const bool writing = sent < request.size();
    pollfd p{fd, static_cast<short>(writing ? POLLOUT : POLLIN), 0};
    int n = ::poll(&p, 1, MillisLeft(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = true;
      break;
    }
    if (writing) {
      ssize_t w = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (w < 0) {
        ::close(fd);
        return failed(absl::StrCat("write tcp ", host_port, ": ", GoErrno(errno)));
      }
      sent += static_cast<size_t>(w);
      continue;
    }
    char buf[4096];
    ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break;  // the end of the answer (or a reset)
    response.append(buf, static_cast<size_t>(r));
    size_t header_end = response.find("\r\n\r\n");
    if (code < 0 && header_end != std::string::npos) {
      // "HTTP/1.x NNN Reason"
      size_t space = response.find(' ');
      if (space == std::string::npos || !absl::SimpleAtoi(response.substr(space + 1, 3), &code)) {
        ::close(fd);
        return failed("net/http: HTTP/1.x transport connection broken: malformed HTTP response");
      }
    }
    // The body is read (bounded), as the kubelet does, so the server is not cut off mid-write.
    if (code >= 0 && response.size() - header_end > kMaxBody) break;
  }
  ::close(fd);
  if (code < 0) {
    if (timed_out) {
      return failed("context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
    }
    return failed("EOF");
  }
  if (code >= 200 && code < 400) return {true, ""};
  return {false, absl::StrCat("HTTP probe failed with statuscode: ", code)};
}

}  // namespace

std::optional<ProbeSpec> ReadinessProbeOf(const json& container, const std::string& pod_ip) {
  const json& probe = Field(container, "readinessProbe");
  if (!probe.is_object()) return std::nullopt;
  ProbeSpec spec;
  spec.host = pod_ip;
  auto seconds = [&](const char* field, int64_t fallback, int64_t min) {
    return std::max(IntField(probe, field, fallback), min);
  };
  spec.initial_delay = absl::Seconds(seconds("initialDelaySeconds", 0, 0));
  spec.period = absl::Seconds(seconds("periodSeconds", 10, 1));
  spec.timeout = absl::Seconds(seconds("timeoutSeconds", 1, 1));
  spec.success_threshold = static_cast<int>(seconds("successThreshold", 1, 1));
  spec.failure_threshold = static_cast<int>(seconds("failureThreshold", 3, 1));
  const json* handler = nullptr;
  if (probe.contains("httpGet")) {
    spec.kind = ProbeSpec::Kind::kHttpGet;
    handler = &probe["httpGet"];
  } else if (probe.contains("tcpSocket")) {
    spec.kind = ProbeSpec::Kind::kTcpSocket;
    handler = &probe["tcpSocket"];
  } else {
    spec.problem = "the fake kubelet runs httpGet and tcpSocket probes only";
    return spec;
  }
  const std::string host = StringField(*handler, "host");
  if (!host.empty()) spec.host = host;
  const json& port = Field(*handler, "port");
  if (port.is_number_integer()) {
    spec.port = port.get<int>();
  } else if (port.is_string()) {
    const std::string name = port.get<std::string>();
    if (!absl::SimpleAtoi(name, &spec.port)) {
      const json& ports = Field(container, "ports");
      for (size_t i = 0; ports.is_array() && i < ports.size(); ++i) {
        if (StringField(ports[i], "name") == name)
          spec.port = IntField(ports[i], "containerPort", 0);
      }
      if (spec.port == 0) {
        spec.problem = absl::StrCat("couldn't find port: ", name, " in ", container.dump());
      }
    }
  }
  if (spec.kind == ProbeSpec::Kind::kHttpGet) {
    std::string path = StringField(*handler, "path");
    spec.path = path.empty() || path[0] != '/' ? "/" + path : path;
    const std::string scheme = StringField(*handler, "scheme");
    if (!scheme.empty() && scheme != "HTTP") {
      spec.problem = absl::StrCat("the fake kubelet probes scheme HTTP only, not ", scheme);
    }
    const json& headers = Field(*handler, "httpHeaders");
    for (size_t i = 0; headers.is_array() && i < headers.size(); ++i) {
      spec.headers.emplace_back(StringField(headers[i], "name"), StringField(headers[i], "value"));
    }
  }
  return spec;
}

ProbeResult RunProbe(const ProbeSpec& spec) {
  if (!spec.problem.empty()) return {false, spec.problem};
  return spec.kind == ProbeSpec::Kind::kHttpGet ? ProbeHttp(spec) : ProbeTcp(spec);
}

ProbeWorker::ProbeWorker(ProbeSpec spec, Report report)
    : spec_(std::move(spec)), report_(std::move(report)) {
  thread_ = std::thread([this] { Run(); });
}

ProbeWorker::~ProbeWorker() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void ProbeWorker::RequestStop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
}

bool ProbeWorker::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

void ProbeWorker::Run() {
  absl::Time next = absl::Now() + spec_.initial_delay;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(&stop_), next);
      if (stop_) break;
    }
    ProbeResult result = RunProbe(spec_);
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      report_(result);
    }
    next = std::max(next + spec_.period, absl::Now());
  }
  absl::MutexLock lock(&mu_);
  finished_ = true;
}

}  // namespace submarine::testing::fake_kube
