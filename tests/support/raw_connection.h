#pragma once
// A raw TCP connection from a chosen local address (any 127.x.y.z is loopback on Linux), for
// tests that play an attacker: holding many idle connections, or sending half a request and
// stalling. Bytes in, bytes out, no HTTP beyond reading a status code. Not thread-safe.

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::testing {

class RawConnection {
 public:
  RawConnection() = default;
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&& other) noexcept;
  ~RawConnection();

  // Connects to IPv4 "host:port" from `source_ip` (port chosen by the kernel).
  static absl::StatusOr<RawConnection> Open(const std::string& address,
                                            const std::string& source_ip);

  // Sends all of `bytes`; UNAVAILABLE if the connection is closed or reset.
  absl::Status Send(const std::string& bytes);
  // Whether the server has sent something or closed (data, end of stream or a reset waiting to
  // be read) within `timeout`; zero looks once without waiting.
  bool Readable(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Reads until the server closes the connection (true) or `timeout` passes (false).
  bool WaitClosed(std::chrono::milliseconds timeout);
  // The status code of the next response, which is read whole (by Content-Length) and its body
  // stored in `body` when not null; 0 if the connection closed, was reset or stayed silent for
  // `timeout` first.
  int ReadStatus(std::string* body = nullptr,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  // Appends what arrives before `deadline`; false on timeout, end of stream or reset.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string received_;
};

}  // namespace submarine::testing
