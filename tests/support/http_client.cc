#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/net/address.h"
#include "common/status/status.h"

namespace submarine::testing {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::string HttpResult::Header(const std::string& name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? "" : it->second;
}

HttpConnection::HttpConnection(HttpConnection&& o) noexcept
    : fd_(o.fd_), host_(std::move(o.host_)), buffer_(std::move(o.buffer_)) {
  o.fd_ = -1;
}

HttpConnection& HttpConnection::operator=(HttpConnection&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    host_ = std::move(o.host_);
    buffer_ = std::move(o.buffer_);
    o.fd_ = -1;
  }
  return *this;
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<HttpConnection> HttpConnection::Connect(const std::string& address) {
  std::string host;
  int port = 0;
  SUBMARINE_RETURN_IF_ERROR(net::SplitHostPort(address, &host, &port));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad host ", host));
  }
  HttpConnection c;
  c.host_ = address;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) return Unavailable(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{30, 0};
  ::setsockopt(c.fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(c.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Unavailable(absl::StrCat("connect ", address, ": ", strerror(errno)));
  }
  return c;
}

absl::StatusOr<HttpResult> HttpConnection::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  SUBMARINE_RETURN_IF_ERROR(Send(method, target, body, headers));
  return ReadResponse();
}

absl::StatusOr<HttpResult> HttpConnection::StartRequest(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  SUBMARINE_RETURN_IF_ERROR(Send(method, target, body, headers));
  return ReadHead();
}

absl::StatusOr<std::string> HttpConnection::ReadChunk() {
  size_t end;
  while ((end = buffer_.find("\r\n")) == std::string::npos) SUBMARINE_RETURN_IF_ERROR(Fill());
  size_t length = 0;
  try {
    length = std::stoul(buffer_.substr(0, end), nullptr, 16);
  } catch (const std::exception&) {
    return Internal(absl::StrCat("bad chunk size line: ", buffer_.substr(0, end)));
  }
  while (buffer_.size() < end + 2 + length + 2) SUBMARINE_RETURN_IF_ERROR(Fill());
  std::string data = buffer_.substr(end + 2, length);
  buffer_.erase(0, end + 2 + length + 2);  // no trailers are sent after the last chunk
  return data;
}

void HttpConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status HttpConnection::Send(const std::string& method, const std::string& target,
                                  const std::string& body,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string raw = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: ", host_, "\r\n");
  for (const auto& [k, v] : headers) absl::StrAppend(&raw, k, ": ", v, "\r\n");
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
    absl::StrAppend(&raw, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&raw, "\r\n", body);
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = ::send(fd_, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return Unavailable(absl::StrCat("send: ", strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status HttpConnection::SendBytes(std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return Unavailable(absl::StrCat("send: ", n == 0 ? "nothing sent" : strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpResult> HttpConnection::ReadAnswer() { return ReadResponse(); }

absl::StatusOr<HttpResult> HttpConnection::SendRaw(const std::string& raw) {
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = ::send(fd_, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;  // the server may answer and close before reading everything
    }
    sent += static_cast<size_t>(n);
  }
  return ReadResponse();
}

absl::Status HttpConnection::Fill() {
  char chunk[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n < 0 && errno == EINTR) continue;
    return Unavailable(n == 0 ? "connection closed by the server"
                              : absl::StrCat("recv: ", strerror(errno)));
  }
}

absl::StatusOr<HttpResult> HttpConnection::ReadResponse() {
  SUBMARINE_ASSIGN_OR_RETURN(HttpResult result, ReadHead());
  if (Lower(result.Header("transfer-encoding")) == "chunked") {
    for (;;) {
      SUBMARINE_ASSIGN_OR_RETURN(std::string chunk, ReadChunk());
      if (chunk.empty()) break;
      result.body += chunk;
    }
    return result;
  }
  size_t length = 0;
  if (auto it = result.headers.find("content-length"); it != result.headers.end()) {
    length = std::stoul(it->second);
  }
  while (buffer_.size() < length) SUBMARINE_RETURN_IF_ERROR(Fill());
  result.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return result;
}

absl::StatusOr<HttpResult> HttpConnection::ReadHead() {
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) SUBMARINE_RETURN_IF_ERROR(Fill());
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  HttpResult result;
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0) {
    return Internal(absl::StrCat("bad status line: ", status_line));
  }
  result.status = std::stoi(status_line.substr(9, 3));
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      result.headers[Lower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
    }
    pos = next + 2;
  }
  return result;
}

bool HttpConnection::PeerClosed() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0) return false;
  char c;
  return ::recv(fd_, &c, 1, MSG_PEEK) == 0;
}

absl::StatusOr<HttpResult> HttpCall(
    const std::string& address, const std::string& method, const std::string& target,
    const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers) {
  SUBMARINE_ASSIGN_OR_RETURN(HttpConnection c, HttpConnection::Connect(address));
  return c.Request(method, target, body, headers);
}

}  // namespace submarine::testing
