#pragma once
// The gateway's HTTP/1.1 server (Boost.Beast/Asio, kept out of this header): keep-alive
// connections, one strand per connection, `io_threads` threads running one io_context. Requests
// are handed to an HttpHandler as HttpExchange objects; the handler answers from any thread.
// Requests over the header or body limit are not read further: the handler receives them with
// rejected_status 431 or 413 (400 for malformed HTTP) and the connection closes after the answer.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::gateway {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // target after '?', still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string peer;  // "ip:port" of the client
  // Non-zero when the server refused the request before reading it whole: 413 (body over the
  // limit), 431 (header block over the limit) or 400 (malformed HTTP).
  int rejected_status = 0;

  // The first header named `name` (lower-case), empty if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// One request/response on a connection. Thread-safe.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  // Runs `fn` on the connection's strand (serialized with the connection's I/O).
  virtual void Post(std::function<void()> fn) = 0;
  // Sends the answer; only the first call counts. The write happens on the connection's strand.
  // An exchange destroyed without an answer answers 500.
  virtual void Respond(HttpResponse response) = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";
  int io_threads = 2;
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  // Open connections at most; one more is answered 503 and closed. A connection carries one
  // request at a time, so this also bounds requests (and request bodies) in flight.
  size_t max_connections = 512;
  // A keep-alive connection idle this long is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // Stop(0) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (connections queue until Start); returns the bound "host:port".
  absl::StatusOr<std::string> Bind();
  // Starts the I/O threads and accepting.
  void Start();
  // Graceful stop: closes the listener and idle connections, lets in-flight requests finish
  // (their connections then close) for at most `grace`, then stops the threads. Idempotent.
  void Stop(std::chrono::milliseconds grace);

  class Impl;  // defined in http_server.cc, the only file that includes Beast

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace submarine::gateway
