#include "common/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::net {

absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) {
    return InvalidField("address", absl::StrCat("expected host:port, got \"", address, "\""));
  }
  *host = address.substr(0, colon);
  try {
    *port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    return InvalidField("address", absl::StrCat("bad port in \"", address, "\""));
  }
  if (*port < 0 || *port > 65535) {
    return InvalidField("address", absl::StrCat("bad port in \"", address, "\""));
  }
  if (host->empty() || *host == "localhost") *host = "127.0.0.1";
  return absl::OkStatus();
}

absl::StatusOr<BoundSocket> ListenTcp(const std::string& address) {
  std::string host;
  int port = 0;
  SUBMARINE_RETURN_IF_ERROR(SplitHostPort(address, &host, &port));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(absl::StrCat("socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    ::close(fd);
    return InvalidField("address", absl::StrCat("not an IPv4 address: \"", host, "\""));
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 128) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return Unavailable(absl::StrCat("cannot listen on ", address, ": ", err));
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return BoundSocket{fd, absl::StrCat(host, ":", ntohs(sa.sin_port))};
}

namespace {

// The low end of the kernel's ephemeral port range (source ports of outgoing connections).
int EphemeralLow() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return (range >> low) ? low : 32768;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  // A picked port is bound later, often seconds later and by another process. Inside the
  // ephemeral range it may meanwhile become the source port of any outgoing connection on the
  // machine (a parallel test run collided exactly so), so pick below it when there is room.
  constexpr int kFirst = 10000;
  const int last = EphemeralLow() - 1;
  if (last - kFirst >= 1000) {
    static std::mutex mu;
    static std::mt19937 random{std::random_device{}()};
    for (int attempt = 0; attempt < 64; ++attempt) {
      int port;
      {
        std::lock_guard lock(mu);
        port = std::uniform_int_distribution<int>(kFirst, last)(random);
      }
      auto bound = ListenTcp(absl::StrCat("127.0.0.1:", port));
      if (bound.ok()) {
        ::close(bound->fd);
        return port;
      }
    }
  }
  SUBMARINE_ASSIGN_OR_RETURN(auto bound, ListenTcp("127.0.0.1:0"));
  ::close(bound.fd);
  std::string host;
  int port = 0;
  SUBMARINE_RETURN_IF_ERROR(SplitHostPort(bound.address, &host, &port));
  return port;
}

}  // namespace submarine::net
