#pragma once
// The fake API server's HTTP/1.1 transport: a listener on 127.0.0.1 (a free port) and one
// thread per connection, so a long watch or a followed log never blocks other requests.
// Keep-alive, Content-Length and chunked request bodies, `Expect: 100-continue`; answers are
// whole (Content-Length) or streamed (Transfer-Encoding: chunked, TCP_NODELAY so each event
// leaves at once). Connections are capped (kMaxConnections); beyond that a newcomer is closed.

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace submarine::testing::fake_kube {

struct HttpRequest {
  std::string method;
  std::string target;                                        // path?query as received
  std::string path;                                          // percent-encoded
  std::string query;                                         // percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  // The first header named `name` (lower-case), empty if absent.
  std::string Header(const std::string& name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// How a handler answers. Not thread-safe: used by the handler's thread only.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  // A whole answer. Only the first Respond or StartStream counts.
  virtual void Respond(int status, const std::string& content_type, const std::string& body,
                       const HttpHeaders& headers = {}) = 0;
  // Starts a chunked answer; WriteChunk sends each piece at once (false once the client is
  // gone). The stream ends when the handler returns.
  virtual bool StartStream(int status, const std::string& content_type,
                           const HttpHeaders& headers = {}) = 0;
  virtual bool WriteChunk(const std::string& data) = 0;
  // Whether the client has closed its side (checked without waiting).
  virtual bool PeerClosed() = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponder&)>;

class HttpServer {
 public:
  static constexpr size_t kMaxConnections = 1024;
  static constexpr size_t kMaxHeaderBytes = 1 << 20;
  static constexpr size_t kMaxBodyBytes = 64 << 20;

  explicit HttpServer(HttpHandler handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds 127.0.0.1 on a free port and listens (connections wait until Serve); returns the port.
  absl::StatusOr<int> Bind() { return Bind("127.0.0.1", 0); }
  // The same on an IPv4 `address` and `port` (0 = a free one), e.g. another loopback address
  // standing for another host.
  absl::StatusOr<int> Bind(const std::string& address, int port);
  // Starts accepting connections. Call once, after Bind succeeded.
  void Serve();
  // Closes the listener and every connection (a streaming handler sees its writes fail and
  // PeerClosed), then joins the threads. The handler's own waits must be ended by its owner
  // first (the fake stops its store before its server). Idempotent.
  void Stop();

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void AcceptLoop();
  void Serve(Connection* connection);
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HttpHandler handler_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd that ends AcceptLoop
  std::thread acceptor_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

// Percent-decodes a path segment or query component ('+' is a space in queries only).
std::string PercentDecode(const std::string& text, bool plus_is_space);

}  // namespace submarine::testing::fake_kube
