#pragma once
// A plain HTTP/1.1 client for JSON REST APIs that are not Kubernetes (the YARN ResourceManager
// and NodeManagers): one request per call over libcurl, the answer's status and body returned
// as they came. What a status means is the caller's business; a transport failure (connection
// refused, reset, timeout) is UNAVAILABLE naming the method and URL.
//
// Thread-safe: every call uses its own curl handle.

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::net {

struct HttpAnswer {
  long status = 0;
  std::string body;
};

class HttpJsonClient {
 public:
  explicit HttpJsonClient(std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          int64_t max_answer_bytes = 64 << 20);

  // `body` empty = none; otherwise sent as application/json. RESOURCE_EXHAUSTED when the answer
  // is larger than max_answer_bytes.
  absl::StatusOr<HttpAnswer> Send(const std::string& method, const std::string& url,
                                  const std::string& body = "") const;

 private:
  std::chrono::milliseconds timeout_;
  int64_t max_answer_bytes_;
};

}  // namespace submarine::net
