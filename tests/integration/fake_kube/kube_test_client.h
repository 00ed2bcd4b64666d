#pragma once
// What the fake's tests talk to it with: whole JSON requests (through the test HttpConnection)
// and a watch/log stream reader that decodes chunked transfer encoding and hands out lines.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/http_client.h"

namespace submarine::testing {

// One request to the fake at "127.0.0.1:<port>".
struct KubeAnswer {
  int status = 0;
  nlohmann::json body;  // null when not JSON
  std::string raw;
  std::string warning;  // the Warning header
};
KubeAnswer KubeCall(const std::string& address, const std::string& method,
                    const std::string& target, const nlohmann::json& body = nullptr,
                    const std::string& content_type = "application/json",
                    const std::string& token = "");

// A streamed answer (watch, followed log), read line by line.
class StreamReader {
 public:
  StreamReader() = default;
  StreamReader(StreamReader&& other) noexcept;
  StreamReader& operator=(StreamReader&& other) noexcept;
  ~StreamReader();

  // Sends GET `target` and reads the status line and headers.
  static absl::StatusOr<StreamReader> Open(const std::string& address, const std::string& target,
                                           const std::string& token = "");
  int status() const { return status_; }
  bool chunked() const { return chunked_; }
  // The next line (without '\n'), waiting at most `timeout`; nullopt on timeout or at the end
  // of the stream (then ended() is true).
  std::optional<std::string> NextLine(std::chrono::milliseconds timeout);
  // The next line parsed as JSON.
  std::optional<nlohmann::json> NextEvent(std::chrono::milliseconds timeout);
  // Waits for the end of the stream (the last chunk or the connection closing).
  bool WaitEnded(std::chrono::milliseconds timeout);
  bool ended() const { return ended_; }
  // Everything decoded so far that was not handed out as a line.
  const std::string& pending() const { return data_; }

 private:
  bool Pump(std::chrono::steady_clock::time_point deadline);
  void Decode();

  int fd_ = -1;
  int status_ = 0;
  bool chunked_ = false;
  bool ended_ = false;
  std::string raw_;   // received, not yet decoded
  std::string data_;  // decoded body
};

}  // namespace submarine::testing
