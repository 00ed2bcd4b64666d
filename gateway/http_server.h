#pragma once
// The gateway's HTTP/1.1 server (Boost.Beast/Asio, kept out of this header): keep-alive
// connections, one strand per connection, `io_threads` threads running one io_context, HTTPS
// (optionally mutual TLS) when `tls` is set. Requests are handed to an HttpHandler as
// HttpExchange objects; the handler answers from any thread. Requests over the header or body
// limit are not read further: the handler receives them with rejected_status 431 or 413 (400 for
// malformed HTTP) and the connection closes after the answer.
//
// Connections are bounded so that no client can starve the others:
// - per client: a client address (the TCP peer) holds at most max_connections_per_client open
//   connections; one more is answered 429 and closed. A peer in trusted_proxies is not capped;
//   the requests it carries are instead bounded per forwarded client (ClientAddress()) at the
//   same number in flight, beyond which the handler receives rejected_status 429.
// - globally: at max_connections a newcomer closes the connection that has been idle between
//   requests the longest; only when every connection is in the middle of a request is it
//   answered 503 and closed. Over TLS refused connections are closed without an answer.
// - in time: a connection waits at most idle_timeout for the first byte of a request, then has
//   header_timeout to complete the header block (and the TLS handshake, first) before it is
//   closed without an answer; a body must arrive within idle_timeout of its header.
// Refusals, evictions and timeouts are counted on the global metrics registry.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net/cidr.h"

namespace submarine::gateway {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // target after '?', still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;                                          // empty when body_streamed
  // The body is not read yet (body_policy_for said so): the handler reads it piece by piece
  // with HttpExchange::ReadBody.
  bool body_streamed = false;
  std::string peer;    // "ip:port" of the TCP peer
  std::string client;  // the client the request is accounted to: see ClientAddress()
  // Non-zero when the server refused the request: 413 (body over the limit), 431 (header block
  // over the limit) or 400 (malformed HTTP), all not read whole; 429 when the forwarded client
  // already has max_connections_per_client requests in flight.
  int rejected_status = 0;
  size_t body_limit = 0;  // the limit the body was held to (413 names it)

  // The first header named `name` (lower-case), empty if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// One piece of a streamed request body (HttpExchange::ReadBody).
struct BodyPiece {
  enum class State {
    kMore,       // `data` and more to come
    kEnd,        // `data` (possibly empty) is the last of the body
    kTooLarge,   // the body went over the request's body_limit: nothing more can be read
    kMalformed,  // the body is not valid HTTP (a bad chunk)
    kGone,       // the client closed the connection, sent nothing for idle_timeout, or the
                 // request was already answered
  };
  State state = State::kMore;
  std::string data;
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
  // An answer given while a ReadBody is in flight is sent once that read has ended. A request
  // whose streamed body was not read to its end is answered with Connection: close.
  virtual void Respond(HttpResponse response) = 0;

  // For a request with body_streamed: reads the next piece of the body — at most `max_bytes`,
  // fewer only at its end — and calls `on_piece` with it on the connection's strand. At most one
  // read is in flight; nothing is read from the socket between two calls, so a handler that asks
  // for the next piece only when it has passed the previous one on holds a fast client back
  // by TCP flow control. kEnd comes once; any call after a final state gets kGone.
  virtual void ReadBody(size_t max_bytes, std::function<void(BodyPiece)> on_piece) = 0;

  // A streamed answer instead of Respond() (for server-streaming methods), sent as it is
  // produced: chunked transfer encoding on HTTP/1.1 (on HTTP/1.0 the body runs to the close),
  // and the connection closes after it. StartStream sends the status line and headers of
  // `head`, then its body (if any) as the first chunk; WriteChunk sends one more; at most one of
  // them is in flight: each calls `on_written(ok)` on the connection's strand once its bytes are
  // written (ok) or can no longer be (the client is gone, or did not read them within 30 s).
  // `on_gone` runs on the strand, at most once, if the client closes the connection before
  // EndStream, even while nothing is being written, so the producer can stop. EndStream sends
  // `last` (if not empty), ends the body and closes the connection. An exchange destroyed with
  // its stream not ended closes the connection (the client sees a truncated body).
  virtual void StartStream(HttpResponse head, std::function<void(bool ok)> on_written,
                           std::function<void()> on_gone) = 0;
  virtual void WriteChunk(std::string data, std::function<void(bool ok)> on_written) = 0;
  virtual void EndStream(std::string last) = 0;
  // Closes the connection in the middle of a streamed answer, without ending the chunked body,
  // so that the client sees it truncated (for raw bodies, which have no room for an error).
  virtual void AbortStream() = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

// PEM files of the HTTPS side.
struct HttpTlsOptions {
  std::string cert_file;  // certificate chain
  std::string key_file;   // its private key
  std::string ca_file;    // when set, clients must present a certificate chaining to it
};

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";
  int io_threads = 2;
  size_t max_body_bytes = 4 << 20;
  // How one request's body is taken, from its method and target (e.g. its route's), asked once
  // its header is read: its limit, and whether it is `streamed` — handed to the handler before
  // the body is read (body_streamed set; the handler reads it with HttpExchange::ReadBody, still
  // held to the limit). Unset: max_body_bytes for every request, every body read whole first.
  struct BodyPolicy {
    size_t limit = 0;
    bool streamed = false;
  };
  std::function<BodyPolicy(std::string_view method, std::string_view target)> body_policy_for;
  size_t max_header_bytes = 16 << 10;
  // Open connections at most (see the file comment for what happens at the limit). A connection
  // carries one request at a time, so this also bounds requests (and request bodies) in flight.
  size_t max_connections = 512;
  // Open connections per client address; requests in flight per forwarded client.
  size_t max_connections_per_client = 64;
  // Peers whose X-Forwarded-For is believed (see ClientAddress()).
  std::vector<net::CidrBlock> trusted_proxies;
  // How long a keep-alive connection may wait for the next request's first byte.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // How long a request's header block (and the TLS handshake) may take from its first byte.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(5);
  // Serve HTTPS when set.
  std::optional<HttpTlsOptions> tls;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // Stop(0) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS files (INVALID_ARGUMENT naming the http_tls key of a file that cannot be
  // used), binds and listens (connections queue until Start); returns the bound "host:port".
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
