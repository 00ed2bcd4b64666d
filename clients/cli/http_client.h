#pragma once
// A small blocking HTTP/1.1 client over libcurl for the gateway's REST API. One instance per
// thread (a curl handle is not thread-safe); cheap to create.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::cli {

struct HttpResponse {
  long status = 0;   // HTTP status code
  std::string body;  // response body
};

// Extra request headers as (name, value) pairs, e.g. {"Authorization", "Bearer ..."}.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  // `base_url` such as "http://127.0.0.1:8080" (a trailing '/' is dropped).
  explicit HttpClient(std::string base_url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends `method` to base_url + `path_and_query` with a JSON `body` (none when empty) and
  // `headers`. Returns the response whatever its status; UNAVAILABLE if the server cannot be
  // reached, DEADLINE_EXCEEDED on timeout. Header values are never logged.
  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path_and_query,
                                    const std::string& body = "",
                                    const HttpHeaders& headers = {}) const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  std::chrono::milliseconds timeout_;
};

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& value);

// OK for 2xx; otherwise a status whose code comes from the server's error body
// ({"error":{"code","message","status",...}}), falling back to the HTTP status, and whose message
// is the server's message (or the raw body).
absl::Status StatusFromResponse(const HttpResponse& response);

// The google.rpc.ErrorInfo reason of an error body (details[@type=...ErrorInfo].reason), "" if
// the body carries none.
std::string ErrorReason(const HttpResponse& response);

// The canonical code for a gRPC status name ("NOT_FOUND"); UNKNOWN if not a name.
absl::StatusCode CodeFromName(const std::string& name);

}  // namespace submarine::cli
