#pragma once
// HTTP(S) requests for tests through libcurl, for what HttpConnection lacks: TLS (a CA to trust,
// a client certificate to present) and a chosen local address to connect from (any 127.x.y.z is
// loopback on Linux, so one test can play many clients). One request per call, on a fresh
// connection. Thread-safe.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/http_client.h"

namespace submarine::testing {

struct CurlOptions {
  std::string source_ip;  // local address to connect from, e.g. "127.0.0.3"; empty: any
  std::string ca_file;    // HTTPS: the CA the server's certificate must chain to
  std::string cert_file;  // HTTPS: a client certificate to present (with key_file)
  std::string key_file;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

// Sends `method` to `url` ("http://127.0.0.1:8080/healthz", "https://127.0.0.1:8443/..."; the
// server's certificate is always verified). UNAVAILABLE with curl's words when no answer
// arrives: connection refused or reset, TLS handshake or certificate failure, timeout.
absl::StatusOr<HttpResult> CurlCall(const std::string& method, const std::string& url,
                                    const CurlOptions& options = {});

}  // namespace submarine::testing
