#pragma once
// A small blocking HTTP/1.1 client over libcurl for the gateway's REST API. It keeps one curl
// handle, so consecutive requests reuse one keep-alive connection (libcurl reconnects when the
// server closed it). Not thread-safe: one instance per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::cli {

// Request or response headers as (name, value) pairs, e.g. {"Authorization", "Bearer ..."}.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  long status = 0;      // HTTP status code
  std::string body;     // response body
  HttpHeaders headers;  // response headers, names in lower case
};

class HttpClient {
 public:
  // `base_url` such as "http://127.0.0.1:8080" (a trailing '/' is dropped).
  explicit HttpClient(std::string base_url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method` to base_url + `path_and_query` with a JSON `body` (none when empty) and
  // `headers`. Returns the response whatever its status; UNAVAILABLE if the server cannot be
  // reached or the connection breaks before the whole answer arrived, DEADLINE_EXCEEDED on
  // timeout, INVALID_ARGUMENT for a URL libcurl cannot use. Header values are never logged.
  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path_and_query,
                                    const std::string& body = "", const HttpHeaders& headers = {});

  // Sends a request whose answer is streamed (NDJSON): a 2xx body goes to `on_data` piece by
  // piece as it arrives (returning false stops the transfer early, which is not an error); any
  // other answer is returned with its body whole. No overall timeout. UNAVAILABLE when the
  // server cannot be reached or the connection breaks mid-stream.
  absl::StatusOr<HttpResponse> Stream(const std::string& method, const std::string& path_and_query,
                                      const HttpHeaders& headers,
                                      const std::function<bool(std::string_view)>& on_data);

  const std::string& base_url() const { return base_url_; }

 private:
  struct Handle;
  std::string base_url_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Handle> handle_;  // the curl handle and its connection cache
};

// Percent-encodes a query parameter value or one path segment (curl_easy_escape: everything but
// RFC 3986 unreserved characters).
std::string UrlEncode(const std::string& value);

// The value of header `name` (lower case) in `response`; "" if absent.
std::string HeaderValue(const HttpResponse& response, const std::string& name);

// How long a Retry-After header of `response` asks to wait (delta-seconds or an HTTP-date,
// relative to `now_unix`); nullopt when there is none or it cannot be read. Never negative.
std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response, int64_t now_unix);

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
