#include "tests/support/raw_connection.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/net/address.h"
#include "common/status/status.h"

namespace submarine::testing {
namespace {

using Clock = std::chrono::steady_clock;

int Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(other.fd_), received_(std::move(other.received_)) {
  other.fd_ = -1;
}

RawConnection& RawConnection::operator=(RawConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    received_ = std::move(other.received_);
    other.fd_ = -1;
  }
  return *this;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<RawConnection> RawConnection::Open(const std::string& address,
                                                  const std::string& source_ip) {
  std::string host;
  int port = 0;
  SUBMARINE_RETURN_IF_ERROR(net::SplitHostPort(address, &host, &port));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1 ||
      ::inet_pton(AF_INET, source_ip.c_str(), &from.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad address ", host, " or ", source_ip));
  }
  RawConnection c;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) return Unavailable(absl::StrCat("socket: ", std::strerror(errno)));
  if (::bind(c.fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    return Unavailable(absl::StrCat("bind ", source_ip, ": ", std::strerror(errno)));
  }
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    return Unavailable(absl::StrCat("connect ", address, ": ", std::strerror(errno)));
  }
  return c;
}

absl::Status RawConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable(absl::StrCat("send: ", std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

bool RawConnection::Readable(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

bool RawConnection::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  char chunk[4096];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, Remaining(deadline)) <= 0) return false;
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      received_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return true;  // end of stream or reset
  }
}

bool RawConnection::Fill(std::chrono::steady_clock::time_point deadline) {
  char chunk[4096];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, Remaining(deadline)) <= 0) return false;
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    received_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

int RawConnection::ReadStatus(std::string* body, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  size_t end;
  while ((end = received_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return 0;
  }
  std::string head = received_.substr(0, end);
  received_.erase(0, end + 4);
  if (head.size() < 12 || head.rfind("HTTP/1.", 0) != 0) return 0;
  size_t length = 0;
  for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
    size_t at = head.find(name);
    if (at != std::string::npos) length = std::strtoul(head.c_str() + at + 17, nullptr, 10);
  }
  while (received_.size() < length) {
    if (!Fill(deadline)) return 0;
  }
  if (body != nullptr) *body = received_.substr(0, length);
  received_.erase(0, length);
  return std::atoi(head.substr(9, 3).c_str());
}

}  // namespace submarine::testing
