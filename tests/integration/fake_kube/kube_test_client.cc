#include "tests/integration/fake_kube/kube_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace submarine::testing {

KubeAnswer KubeCall(const std::string& address, const std::string& method,
                    const std::string& target, const nlohmann::json& body,
                    const std::string& content_type, const std::string& token) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "application/json"}};
  if (!body.is_null()) headers.emplace_back("Content-Type", content_type);
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  KubeAnswer answer;
  auto result = HttpCall(address, method, target, body.is_null() ? "" : body.dump(), headers);
  if (!result.ok()) {
    answer.raw = std::string(result.status().message());
    return answer;
  }
  answer.status = result->status;
  answer.raw = result->body;
  answer.warning = result->Header("warning");
  answer.body = nlohmann::json::parse(result->body, nullptr, false);
  if (answer.body.is_discarded()) answer.body = nullptr;
  return answer;
}

StreamReader::StreamReader(StreamReader&& o) noexcept { *this = std::move(o); }

StreamReader& StreamReader::operator=(StreamReader&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    status_ = o.status_;
    chunked_ = o.chunked_;
    ended_ = o.ended_;
    raw_ = std::move(o.raw_);
    data_ = std::move(o.data_);
    o.fd_ = -1;
  }
  return *this;
}

StreamReader::~StreamReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<StreamReader> StreamReader::Open(const std::string& address,
                                                const std::string& target,
                                                const std::string& token) {
  StreamReader r;
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("address must be host:port");
  }
  r.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (::connect(r.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError("connect failed");
  }
  std::string request = absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ", address,
                                     "\r\nAccept: application/json\r\n");
  if (!token.empty()) absl::StrAppend(&request, "Authorization: Bearer ", token, "\r\n");
  absl::StrAppend(&request, "\r\n");
  if (::send(r.fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return absl::UnavailableError("send failed");
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t end;
  while ((end = r.raw_.find("\r\n\r\n")) == std::string::npos) {
    if (!r.Pump(deadline)) return absl::UnavailableError("no answer header");
  }
  std::string head = r.raw_.substr(0, end);
  r.raw_.erase(0, end + 4);
  if (!absl::SimpleAtoi(head.substr(9, 3), &r.status_)) {
    return absl::InternalError("bad status line");
  }
  r.chunked_ = absl::StrContains(absl::AsciiStrToLower(head), "transfer-encoding: chunked");
  if (!r.chunked_) {
    // A whole answer (an error): read it by Content-Length.
    std::string lower = absl::AsciiStrToLower(head);
    size_t pos = lower.find("content-length:");
    size_t length = 0;
    if (pos != std::string::npos) {
      size_t eol = lower.find("\r\n", pos);
      absl::SimpleAtoi(absl::StripAsciiWhitespace(lower.substr(pos + 15, eol - pos - 15)), &length);
    }
    while (r.raw_.size() < length && r.Pump(deadline)) {
    }
    r.data_ = r.raw_.substr(0, length);
    r.raw_.clear();
    r.ended_ = true;
  }
  r.Decode();
  return r;
}

bool StreamReader::Pump(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    ::close(fd_);
    fd_ = -1;
    ended_ = true;
    return false;
  }
  raw_.append(buf, static_cast<size_t>(n));
  return true;
}

void StreamReader::Decode() {
  if (!chunked_) return;
  while (true) {
    size_t eol = raw_.find("\r\n");
    if (eol == std::string::npos) return;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(raw_.substr(0, eol), &size)) {
      ended_ = true;
      return;
    }
    if (size == 0) {
      ended_ = true;
      raw_.clear();
      return;
    }
    if (raw_.size() < eol + 2 + size + 2) return;
    data_.append(raw_, eol + 2, size);
    raw_.erase(0, eol + 2 + size + 2);
  }
}

std::optional<std::string> StreamReader::NextLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t nl = data_.find('\n');
    if (nl != std::string::npos) {
      std::string line = data_.substr(0, nl);
      data_.erase(0, nl + 1);
      return line;
    }
    if (ended_ || !Pump(deadline)) return std::nullopt;
    Decode();
  }
}

std::optional<nlohmann::json> StreamReader::NextEvent(std::chrono::milliseconds timeout) {
  auto line = NextLine(timeout);
  if (!line) return std::nullopt;
  auto parsed = nlohmann::json::parse(*line, nullptr, false);
  if (parsed.is_discarded()) return nlohmann::json{{"unparsed", *line}};
  return parsed;
}

bool StreamReader::WaitEnded(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ended_) {
    if (!Pump(deadline)) return ended_;
    Decode();
  }
  return true;
}

}  // namespace submarine::testing
