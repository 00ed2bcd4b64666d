// The only translation unit that includes Boost.Beast (it compiles slowly).
#include "gateway/http_server.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/net/address.h"
#include "common/status/status.h"
#include "gateway/client_address.h"

namespace submarine::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// The whole answer to a refused plain-HTTP connection (AIP-193 error, then close).
std::string RefusalResponse(int status, const char* reason_phrase, const char* code,
                            const char* reason, const std::string& message) {
  const std::string body = absl::StrCat(
      "{\"error\":{\"code\":", status, ",\"message\":\"", message, "\",\"status\":\"", code,
      "\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"",
      reason, "\",\"domain\":\"gateway.submarine.io\"}]}}");
  return absl::StrCat("HTTP/1.1 ", status, " ", reason_phrase,
                      "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      "Content-Length: ",
                      body.size(), "\r\n\r\n", body);
}

metrics::Counter* RefusedConnections(const char* reason) {
  return metrics::Registry::Global().GetCounter(
      "gateway_http_connections_refused_total",
      "HTTP connections refused: client_limit (max_connections_per_client) or global_limit "
      "(max_connections with every connection busy)",
      absl::StrCat("reason=\"", reason, "\""));
}

metrics::Counter* EvictedConnections() {
  static auto* counter = metrics::Registry::Global().GetCounter(
      "gateway_http_connections_evicted_total",
      "Idle keep-alive connections closed to make room for a new one at max_connections");
  return counter;
}

metrics::Counter* HeaderTimeouts() {
  static auto* counter = metrics::Registry::Global().GetCounter(
      "gateway_http_header_timeouts_total",
      "Connections closed because a request header block (or TLS handshake) took longer than "
      "header_timeout_ms");
  return counter;
}

metrics::Counter* RefusedRequests() {
  static auto* counter = metrics::Registry::Global().GetCounter(
      "gateway_http_requests_refused_total",
      "Requests from trusted proxies refused because their forwarded client had "
      "max_connections_per_client requests in flight",
      "reason=\"client_limit\"");
  return counter;
}

metrics::Counter* TlsHandshakeFailures() {
  static auto* counter = metrics::Registry::Global().GetCounter(
      "gateway_http_tls_handshake_failures_total",
      "HTTPS connections closed because the TLS handshake failed (plain HTTP, untrusted or "
      "missing client certificate, no common protocol version)");
  return counter;
}

metrics::Gauge* OpenConnections() {
  static auto* gauge = metrics::Registry::Global().GetGauge(
      "gateway_http_connections_open", "Open HTTP connections (not counting those closing)");
  return gauge;
}

metrics::Gauge* IdleConnections() {
  static auto* gauge = metrics::Registry::Global().GetGauge(
      "gateway_http_connections_idle",
      "Open HTTP connections waiting for a request (the first to close at max_connections)");
  return gauge;
}

constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr size_t kFirstReadBytes = 4096;

std::string ToString(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string Lower(beast::string_view s) {
  std::string out(s.data(), s.size());
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

net::IpAddress FromAsio(const asio::ip::address& address) {
  if (address.is_v4()) return net::IpAddress::FromV4(address.to_v4().to_bytes());
  return net::IpAddress::FromV6(address.to_v6().to_bytes());
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

// What the server needs of a connection, whatever its stream. Every method but Refuse() runs on
// the connection's strand.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  explicit SessionBase(HttpServer::Impl* server) : server_(server) {}
  virtual ~SessionBase();

  virtual asio::any_io_executor executor() = 0;
  // Starts serving (after admission).
  virtual void Start() = 0;
  // Refuses the connection before it started: the canned answer (plain HTTP only), then close.
  // On the acceptor's strand.
  virtual void Refuse(const std::string& answer) = 0;
  // Closes the connection if it is waiting for the first byte of a request (eviction, stop).
  virtual void CloseIfIdle() = 0;
  // Sends the answer to the current request.
  virtual void Write(HttpResponse response) = 0;
  // The streamed answer to the current request (HttpExchange::StartStream and the rest).
  virtual void StreamHead(HttpResponse head, std::function<void(bool)> on_written,
                          std::function<void()> on_gone) = 0;
  virtual void StreamChunk(std::string data, std::function<void(bool)> on_written) = 0;
  virtual void StreamEnd(std::string last) = 0;
  // Closes the connection in the middle of a streamed answer.
  virtual void StreamAbort() = 0;
  // The next piece of a streamed request body (HttpExchange::ReadBody).
  virtual void ReadBodyPiece(size_t max_bytes, std::function<void(BodyPiece)> on_piece) = 0;

 protected:
  HttpServer::Impl* server_;
  // The forwarded client whose in-flight slot the current request holds; empty if none.
  std::string request_slot_;
};

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ioc_(std::max(1, options_.io_threads)),
        acceptor_(asio::make_strand(ioc_)),
        work_(asio::make_work_guard(ioc_)),
        client_limit_answer_(RefusalResponse(
            429, "Too Many Requests", "RESOURCE_EXHAUSTED", "CLIENT_CONNECTION_LIMIT",
            absl::StrCat("This client has ", per_client_limit(),
                         " connections open to the gateway already; reuse them"))),
        global_limit_answer_(RefusalResponse(503, "Service Unavailable", "UNAVAILABLE",
                                             "CONNECTION_LIMIT",
                                             "The gateway is at its connection limit; retry "
                                             "later")) {}

  absl::StatusOr<std::string> Bind();
  void Start();
  void Stop(std::chrono::milliseconds grace);

  const HttpServerOptions& options() const { return options_; }
  const HttpHandler& handler() const { return handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  size_t per_client_limit() const {
    return std::max<size_t>(1, options_.max_connections_per_client);
  }

  // Connection accounting, all under mu_. A connection is kIdle while it waits for the first
  // byte of a request, kBusy from then until its answer is written, and kClosing once it is
  // closing (done, timed out or evicted to make room): it will not start another request and no
  // longer counts against max_connections, as it is gone within the linger timeout.
  enum class Admission { kAdmitted, kClientLimit, kGlobalLimit };
  // Admits `session` from `client` (empty: a trusted proxy, not capped) or says why not. When an
  // idle connection must make room, sets `victim` (to be closed by the caller).
  Admission Admit(const std::shared_ptr<SessionBase>& session, const std::string& client,
                  std::shared_ptr<SessionBase>* victim);
  void Unregister(SessionBase* session);
  void MarkIdle(SessionBase* session);
  // False if the connection was evicted meanwhile (it must close instead).
  bool MarkBusy(SessionBase* session);
  void MarkClosing(SessionBase* session);
  // Takes one of `client`'s in-flight request slots; false when it has none left.
  bool AcquireRequestSlot(const std::string& client);
  void ReleaseRequestSlot(const std::string& client);

 private:
  enum class State { kIdle, kBusy, kClosing };
  struct Connection {
    std::weak_ptr<SessionBase> session;
    std::string client;  // key of per_client_, empty when not capped
    State state = State::kBusy;
    std::chrono::steady_clock::time_point idle_since;
  };

  void Accept();
  // Moves `c` to `state`, keeping counts_ and the gauges true. Under mu_.
  void SetState(Connection* c, State state);
  void UpdateGauges();
  std::shared_ptr<SessionBase> MakeSession(tcp::socket socket, const net::IpAddress& peer,
                                           std::string peer_text);

  HttpServerOptions options_;
  HttpHandler handler_;
  std::optional<ssl::context> tls_;  // set by Bind() when options_.tls is
  std::atomic<bool> stopping_{false};
  // Declared before the io_context: sessions destroyed with its queued handlers unregister here.
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<SessionBase*, Connection> connections_;
  std::map<State, size_t> counts_;                              // connections_ by state
  std::unordered_map<std::string, size_t> per_client_;          // open connections
  std::unordered_map<std::string, size_t> requests_in_flight_;  // via trusted proxies
  bool started_ = false;
  bool stopped_ = false;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  // The whole answers to refused plain-HTTP connections.
  const std::string client_limit_answer_;
  const std::string global_limit_answer_;
};

SessionBase::~SessionBase() {
  if (!request_slot_.empty()) server_->ReleaseRequestSlot(request_slot_);
  server_->Unregister(this);
}

// One keep-alive connection over `Stream` (plain TCP or TLS). All its handlers run on its strand.
template <class Stream>
class Session final : public SessionBase {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class... StreamArgs>
  Session(HttpServer::Impl* server, const net::IpAddress& peer, std::string peer_text,
          StreamArgs&&... stream_args)
      : SessionBase(server),
        stream_(std::forward<StreamArgs>(stream_args)...),
        peer_(peer),
        peer_text_(std::move(peer_text)) {}

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  void Start() override {
    asio::dispatch(executor(), [self = Self()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->server_->options().header_timeout);
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            if (ec == beast::error::timeout) {
              HeaderTimeouts()->Inc();
            } else {
              TlsHandshakeFailures()->Inc();
            }
            log::Get("gateway")->debug("TLS handshake with {} failed: {}", self->peer_text_,
                                       ec.message());
            self->server_->MarkClosing(self.get());
            return self->Lowest().close();
          }
          self->WaitForRequest();
        });
      } else {
        self->WaitForRequest();
      }
    });
  }

  void Refuse(const std::string& answer) override {
    beast::error_code ignored;
    auto& socket = Lowest().socket();
    if constexpr (!kTls) {
      // A fresh socket's send buffer is empty: this short write does not block.
      asio::write(socket, asio::buffer(answer), ignored);
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      // Closing with unread bytes sends a reset, which can destroy the answer before the client
      // reads it: drop what the client has sent so far, up to a request's worth, without waiting
      // for more (a refused connection must cost nothing once refused).
      socket.non_blocking(true, ignored);
      beast::error_code ec;
      for (int i = 0; i < 16 && !ec; ++i) socket.read_some(asio::buffer(drain_buffer_), ec);
    }
    socket.close(ignored);
  }

  void CloseIfIdle() override {
    if (waiting_) {
      beast::error_code ignored;
      Lowest().socket().cancel(ignored);
    }
  }

  void Write(HttpResponse r) override {
    answered_ = true;
    if (upload_reading_) {  // sent once that read has ended (EndPiece)
      deferred_response_ = std::move(r);
      return;
    }
    if (!request_slot_.empty()) {
      server_->ReleaseRequestSlot(request_slot_);
      request_slot_.clear();
    }
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(r.status));
    if (r.status == 499) response_.reason("Client Closed Request");
    response_.set(http::field::server, "submarine-gateway");
    response_.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) response_.insert(k, v);
    response_.body() = std::move(r.body);
    // A streamed body not read to its end leaves the connection unusable for another request.
    const bool body_unread = upload_parser_.has_value() && !upload_parser_->is_done();
    response_.keep_alive(keep_alive_ && !server_->stopping() && !body_unread);
    response_.prepare_payload();
    Lowest().expires_after(kWriteTimeout);
    http::async_write(stream_, response_, beast::bind_front_handler(&Session::OnWrite, Self()));
  }

  void StreamHead(HttpResponse r, std::function<void(bool)> on_written,
                  std::function<void()> on_gone) override {
    stream_head_.emplace();
    stream_head_->version(version_);
    stream_head_->result(static_cast<unsigned>(r.status));
    stream_head_->set(http::field::server, "submarine-gateway");
    stream_head_->set(http::field::content_type, r.content_type);
    stream_head_->set(http::field::cache_control, "no-cache");
    for (auto& [k, v] : r.headers) stream_head_->insert(k, v);
    stream_head_->keep_alive(false);
    stream_chunked_ = version_ == 11;
    if (stream_chunked_) stream_head_->chunked(true);
    on_gone_ = std::move(on_gone);
    stream_serializer_.emplace(*stream_head_);
    ArmStreamTimer();
    http::async_write_header(
        stream_, *stream_serializer_,
        [self = Self(), first = std::move(r.body), on_written = std::move(on_written)](
            beast::error_code ec, size_t) mutable {
          self->stream_timer_.cancel();
          if (ec) {
            self->StreamClientGone();
            return on_written(false);
          }
          self->WatchForClose();
          self->StreamChunk(std::move(first), std::move(on_written));
        });
  }

  void StreamChunk(std::string data, std::function<void(bool)> on_written) override {
    if (client_gone_ || closing_) {
      asio::post(executor(), [on_written = std::move(on_written)] { on_written(false); });
      return;
    }
    if (data.empty()) {
      asio::post(executor(), [on_written = std::move(on_written)] { on_written(true); });
      return;
    }
    stream_data_ = std::move(data);
    auto done = [self = Self(), on_written = std::move(on_written)](beast::error_code ec,
                                                                    size_t) mutable {
      self->stream_timer_.cancel();
      if (ec) {
        self->StreamClientGone();
        return on_written(false);
      }
      on_written(true);
    };
    ArmStreamTimer();
    if (stream_chunked_) {
      asio::async_write(stream_, http::make_chunk(asio::buffer(stream_data_)), std::move(done));
    } else {
      asio::async_write(stream_, asio::buffer(stream_data_), std::move(done));
    }
  }

  void StreamEnd(std::string last) override {
    StreamChunk(std::move(last), [self = Self()](bool ok) {
      if (!ok) return self->StreamOver();
      if (!self->stream_chunked_) return self->StreamOver();
      self->ArmStreamTimer();
      asio::async_write(self->stream_, http::make_chunk_last(), [self](beast::error_code, size_t) {
        self->stream_timer_.cancel();
        self->StreamOver();
      });
    });
  }

  void StreamAbort() override {
    on_gone_ = nullptr;
    StreamClientGone();
  }

  void ReadBodyPiece(size_t max_bytes, std::function<void(BodyPiece)> on_piece) override {
    if (!upload_parser_.has_value() || upload_final_ || upload_reading_ || answered_ || closing_) {
      asio::post(executor(), [on_piece = std::move(on_piece)] {
        on_piece(BodyPiece{BodyPiece::State::kGone, {}});
      });
      return;
    }
    upload_reading_ = true;
    on_piece_ = std::move(on_piece);
    piece_.clear();
    piece_max_ = std::max<size_t>(1, max_bytes);
    if (upload_parser_->is_done()) {  // no body at all
      asio::post(executor(), [self = Self()] { self->EndPiece(BodyPiece::State::kEnd); });
      return;
    }
    if (expect_continue_) {  // the client waits for this before it sends the body
      expect_continue_ = false;
      interim_ = {};
      interim_.version(upload_parser_->get().version());
      interim_.result(http::status::continue_);
      Lowest().expires_after(kWriteTimeout);
      http::async_write(stream_, interim_, [self = Self()](beast::error_code ec, size_t) {
        if (ec) return self->EndPiece(BodyPiece::State::kGone);
        self->ReadMoreBody();
      });
      return;
    }
    ReadMoreBody();
  }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  // A streamed chunk the client does not read within kWriteTimeout ends the stream: the socket
  // timer of the stream is not used while the close watch reads.
  void ArmStreamTimer() {
    stream_timer_.expires_after(kWriteTimeout);
    stream_timer_.async_wait([self = Self()](beast::error_code ec) {
      if (ec) return;  // cancelled: the write finished
      log::Get("gateway")->debug("{} did not read a streamed chunk within {} s", self->peer_text_,
                                 kWriteTimeout.count());
      self->StreamClientGone();
    });
  }

  // While a streamed answer is being produced the client sends nothing more (the connection
  // closes after it); a read that ends means the client went away. Bytes that do arrive (a
  // pipelined request) are dropped.
  void WatchForClose() {
    watching_ = true;
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = Self()](beast::error_code ec, size_t) {
                              self->watching_ = false;
                              if (self->stream_over_) return self->Close();
                              if (ec) return self->StreamClientGone();
                              self->WatchForClose();
                            });
  }

  // The client is gone (or too slow): tell the producer, close the socket (pending operations
  // end with an error).
  void StreamClientGone() {
    if (client_gone_) return;
    client_gone_ = true;
    stream_over_ = true;
    if (on_gone_) {
      auto on_gone = std::move(on_gone_);
      on_gone_ = nullptr;
      on_gone();
    }
    if (!closing_) {
      closing_ = true;
      server_->MarkClosing(this);
    }
    beast::error_code ignored;
    stream_timer_.cancel();
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  // The streamed answer is complete: close once the close watch has stopped reading.
  void StreamOver() {
    stream_over_ = true;
    on_gone_ = nullptr;
    if (client_gone_) return;
    if (watching_) {
      beast::error_code ignored;
      Lowest().socket().cancel(ignored);  // its handler closes
      return;
    }
    Close();
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // Between requests: waits (idle_timeout at most) for the first byte of the next one.
  void WaitForRequest() {
    if (server_->stopping()) return Close();
    server_->MarkIdle(this);
    if (buffer_.size() > 0) return ReadHeader();  // pipelined: the next request is here
    waiting_ = true;
    Lowest().expires_after(server_->options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = Self()](beast::error_code ec, size_t n) {
                              self->waiting_ = false;
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  // From the request's first byte: header_timeout for the whole header block.
  void ReadHeader() {
    if (!server_->MarkBusy(this)) return Close();
    upload_parser_.reset();
    upload_final_ = false;
    answered_ = false;
    expect_continue_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options().max_header_bytes));
    // The request's own limit is known once its header is: none until then (Beast would
    // compare a Content-Length with it while parsing the header). Not boost::none, which Beast
    // 1.74 compares as smaller than every length.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    Lowest().expires_after(server_->options().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, Self()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec == beast::error::timeout) {
      HeaderTimeouts()->Inc();
      log::Get("gateway")->debug("{} did not send a request header within {} ms", peer_text_,
                                 server_->options().header_timeout.count());
      return Close();
    }
    if (ec) return OnReadError(ec);
    const auto& options = server_->options();
    const auto& header = parser_->get();
    const HttpServerOptions::BodyPolicy body =
        options.body_policy_for
            ? options.body_policy_for(
                  std::string_view(header.method_string().data(), header.method_string().size()),
                  std::string_view(header.target().data(), header.target().size()))
            : HttpServerOptions::BodyPolicy{options.max_body_bytes, false};
    body_limit_ = body.limit;
    if (parser_->content_length() && *parser_->content_length() > body_limit_) {
      return Dispatch(413);
    }
    parser_->body_limit(body_limit_);  // a chunked body is held to it as it arrives
    if (body.streamed) {
      // Only the header is read: the parser can change its body type (keeping the limit).
      expect_continue_ = beast::iequals(header[http::field::expect], "100-continue");
      upload_parser_.emplace(std::move(*parser_));
      return Dispatch(0);
    }
    if (parser_->is_done()) return Dispatch(0);
    Lowest().expires_after(server_->options().idle_timeout);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      interim_ = {};
      interim_.version(parser_->get().version());
      interim_.result(http::status::continue_);
      http::async_write(stream_, interim_, [self = Self()](beast::error_code wec, size_t) {
        if (wec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, Self()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    Dispatch(0);
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::header_limit) return Dispatch(431);
    if (ec == http::error::body_limit) return Dispatch(413);
    const auto& http_errors = http::make_error_code(http::error::bad_target).category();
    if (ec.category() == http_errors && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return Dispatch(400);  // malformed HTTP
    }
    Close();
  }

  // Hands the request (or its rejection) to the handler.
  void Dispatch(int rejected_status);
  template <class Message>
  void DispatchMessage(Message& msg, int rejected_status);

  // Fills piece_ from the streamed body until it holds piece_max_ bytes or the body ends; each
  // socket read must make progress within idle_timeout.
  void ReadMoreBody() {
    const size_t have = piece_.size();
    piece_.resize(piece_max_);
    auto& body = upload_parser_->get().body();
    body.data = piece_.data() + have;
    body.size = piece_max_ - have;
    body.more = true;
    Lowest().expires_after(server_->options().idle_timeout);
    http::async_read_some(
        stream_, buffer_, *upload_parser_, [self = Self(), have](beast::error_code ec, size_t) {
          const size_t room = self->piece_max_ - have;
          self->piece_.resize(have + (room - self->upload_parser_->get().body().size));
          if (ec == http::error::need_buffer) ec = {};  // piece_ is full
          if (ec == http::error::body_limit) return self->EndPiece(BodyPiece::State::kTooLarge);
          const auto& http_errors = http::make_error_code(http::error::bad_target).category();
          if (ec && ec.category() == http_errors && ec != http::error::end_of_stream &&
              ec != http::error::partial_message) {
            return self->EndPiece(BodyPiece::State::kMalformed);
          }
          if (ec) return self->EndPiece(BodyPiece::State::kGone);
          if (self->upload_parser_->is_done()) return self->EndPiece(BodyPiece::State::kEnd);
          if (self->piece_.size() >= self->piece_max_ || self->deferred_response_.has_value()) {
            return self->EndPiece(BodyPiece::State::kMore);
          }
          self->ReadMoreBody();
        });
  }

  // A ReadBodyPiece is over: hands its piece over, then sends an answer given meanwhile.
  void EndPiece(BodyPiece::State state) {
    upload_reading_ = false;
    // No socket timer while the handler passes the piece on (a slow service must not time the
    // client out); the next read sets it again.
    Lowest().expires_never();
    if (state != BodyPiece::State::kMore) upload_final_ = true;
    BodyPiece piece{state, {}};
    if (state == BodyPiece::State::kMore || state == BodyPiece::State::kEnd) {
      piece.data = std::move(piece_);
    }
    piece_ = {};
    auto on_piece = std::move(on_piece_);
    on_piece_ = nullptr;
    on_piece(std::move(piece));
    if (deferred_response_.has_value()) {
      HttpResponse r = std::move(*deferred_response_);
      deferred_response_.reset();
      Write(std::move(r));
    }
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec || !response_.keep_alive()) return Close();
    WaitForRequest();
  }

  // Stops sending, then reads (and drops) what the client still sends for a short while, so an
  // unread request body does not turn the close into a reset that loses our answer. Over TLS
  // the close_notify exchange plays that part.
  void Close() {
    if (closing_) return;
    closing_ = true;
    server_->MarkClosing(this);
    Lowest().expires_after(kLingerTimeout);
    if constexpr (kTls) {
      stream_.async_shutdown([self = Self()](beast::error_code) { self->Lowest().close(); });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return stream_.close();
      Drain();
    }
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = Self()](beast::error_code ec, size_t) {
                              if (ec) return self->Lowest().close();
                              self->Drain();
                            });
  }

  Stream stream_;
  const net::IpAddress peer_;
  const std::string peer_text_;  // "ip:port"
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // A streamed body (body_policy_for): the parser taken over from parser_ after the header, and
  // the piece being read into (at most piece_max_ bytes: all the body this session holds).
  std::optional<http::request_parser<http::buffer_body>> upload_parser_;
  std::string piece_;
  size_t piece_max_ = 0;
  std::function<void(BodyPiece)> on_piece_;
  std::optional<HttpResponse> deferred_response_;  // given while a piece was being read
  bool upload_reading_ = false;
  bool upload_final_ = false;  // a piece in a final state was handed over
  bool answered_ = false;      // Write() was called for the current request
  bool expect_continue_ = false;
  http::response<http::string_body> response_;
  http::response<http::empty_body> interim_;
  std::array<char, 4096> drain_buffer_{};
  // A streamed answer (StreamHead): its header, what is being written, and its state.
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::string stream_data_;
  asio::steady_timer stream_timer_{stream_.get_executor()};
  std::function<void()> on_gone_;
  bool stream_chunked_ = true;
  size_t body_limit_ = 0;     // the current request's
  bool watching_ = false;     // WatchForClose has a read in flight
  bool stream_over_ = false;  // ended, or the client is gone
  bool client_gone_ = false;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool waiting_ = false;  // for the first byte of a request
  bool closing_ = false;
};

class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<SessionBase> session, HttpRequest request)
      : session_(std::move(session)), request_(std::move(request)) {}

  ~Exchange() override {
    if (streaming_.load() && !stream_ended_.load()) {
      asio::post(session_->executor(), [s = session_] { s->StreamAbort(); });
      return;
    }
    if (!responded_.load()) {
      HttpResponse r;
      r.status = 500;
      r.body = R"({"error":{"code":500,"message":"no answer was produced","status":"INTERNAL"}})";
      Respond(std::move(r));
    }
  }

  const HttpRequest& request() const override { return request_; }

  void Post(std::function<void()> fn) override { asio::post(session_->executor(), std::move(fn)); }

  void Respond(HttpResponse response) override {
    if (responded_.exchange(true)) return;
    asio::post(session_->executor(),
               [s = session_, r = std::move(response)]() mutable { s->Write(std::move(r)); });
  }

  void StartStream(HttpResponse head, std::function<void(bool)> on_written,
                   std::function<void()> on_gone) override {
    if (responded_.exchange(true)) return;
    streaming_.store(true);
    asio::post(session_->executor(), [s = session_, h = std::move(head), w = std::move(on_written),
                                      g = std::move(on_gone)]() mutable {
      s->StreamHead(std::move(h), std::move(w), std::move(g));
    });
  }

  void WriteChunk(std::string data, std::function<void(bool)> on_written) override {
    asio::post(session_->executor(),
               [s = session_, d = std::move(data), w = std::move(on_written)]() mutable {
                 s->StreamChunk(std::move(d), std::move(w));
               });
  }

  void EndStream(std::string last) override {
    if (stream_ended_.exchange(true)) return;
    asio::post(session_->executor(),
               [s = session_, d = std::move(last)]() mutable { s->StreamEnd(std::move(d)); });
  }

  void AbortStream() override {
    if (stream_ended_.exchange(true)) return;
    asio::post(session_->executor(), [s = session_] { s->StreamAbort(); });
  }

  void ReadBody(size_t max_bytes, std::function<void(BodyPiece)> on_piece) override {
    asio::post(session_->executor(), [s = session_, max_bytes, f = std::move(on_piece)]() mutable {
      s->ReadBodyPiece(max_bytes, std::move(f));
    });
  }

 private:
  std::shared_ptr<SessionBase> session_;
  HttpRequest request_;
  std::atomic<bool> responded_{false};
  std::atomic<bool> streaming_{false};
  std::atomic<bool> stream_ended_{false};
};

template <class Stream>
void Session<Stream>::Dispatch(int rejected_status) {
  if (upload_parser_.has_value()) return DispatchMessage(upload_parser_->get(), rejected_status);
  DispatchMessage(parser_->get(), rejected_status);
}

template <class Stream>
template <class Message>
void Session<Stream>::DispatchMessage(Message& msg, int rejected_status) {
  HttpRequest request;
  version_ = msg.version() == 10 ? 10 : 11;
  request.method = ToString(msg.method_string());
  request.target = ToString(msg.target());
  size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  std::string forwarded_for;
  for (const auto& field : msg) {
    request.headers.emplace_back(Lower(field.name_string()), ToString(field.value()));
    if (request.headers.back().first == "x-forwarded-for") {
      if (!forwarded_for.empty()) forwarded_for.push_back(',');
      forwarded_for += request.headers.back().second;
    }
  }
  if constexpr (std::is_same_v<typename Message::body_type, http::buffer_body>) {
    request.body_streamed = true;
  } else if (rejected_status == 0) {
    request.body = std::move(msg.body());
  }
  request.body_limit = body_limit_;
  request.peer = peer_text_;
  const auto& options = server_->options();
  request.client = ClientAddress(peer_, forwarded_for, options.trusted_proxies);
  if (rejected_status == 0 && IsTrustedProxy(peer_, options.trusted_proxies)) {
    if (server_->AcquireRequestSlot(request.client)) {
      request_slot_ = request.client;
    } else {
      RefusedRequests()->Inc();
      rejected_status = 429;
    }
  }
  request.rejected_status = rejected_status;
  // A 429 was read whole, so the connection (a proxy's, shared by many clients) stays usable.
  keep_alive_ = (rejected_status == 0 || rejected_status == 429) && msg.keep_alive();
  // The deadline of the backend call bounds the wait; no socket timer while the handler works.
  Lowest().expires_never();
  server_->handler()(std::make_shared<Exchange>(shared_from_this(), std::move(request)));
}

absl::StatusOr<std::string> HttpServer::Impl::Bind() {
  if (options_.tls.has_value()) {
    const HttpTlsOptions& files = *options_.tls;
    if (files.cert_file.empty() || files.key_file.empty()) {
      return InvalidField(files.cert_file.empty() ? "http_tls.cert_file" : "http_tls.key_file",
                          "is required to serve HTTPS");
    }
    tls_.emplace(ssl::context::tls_server);
    beast::error_code ec;
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                      ec);
    SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
    if (!ec) tls_->use_certificate_chain_file(files.cert_file, ec);
    if (ec) {
      return InvalidField("http_tls.cert_file",
                          absl::StrCat("cannot use ", files.cert_file, ": ", ec.message()));
    }
    tls_->use_private_key_file(files.key_file, ssl::context::pem, ec);
    if (ec) {
      return InvalidField("http_tls.key_file",
                          absl::StrCat("cannot use ", files.key_file, ": ", ec.message()));
    }
    if (!files.ca_file.empty()) {
      tls_->load_verify_file(files.ca_file, ec);
      if (!ec) tls_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
      if (ec) {
        return InvalidField("http_tls.ca_file",
                            absl::StrCat("cannot use ", files.ca_file, ": ", ec.message()));
      }
      // Tells clients which CA their certificate must come from.
      SSL_CTX_set_client_CA_list(tls_->native_handle(),
                                 SSL_load_client_CA_file(files.ca_file.c_str()));
    }
  }
  std::string host;
  int port = 0;
  SUBMARINE_RETURN_IF_ERROR(submarine::net::SplitHostPort(options_.listen, &host, &port));
  beast::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("http_listen: bad host ", host));
  tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(absl::StrCat("cannot listen on ", options_.listen, ": ", ec.message()));
  }
  return absl::StrCat(host, ":", acceptor_.local_endpoint().port());
}

void HttpServer::Impl::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
  }
  asio::dispatch(acceptor_.get_executor(), [this] { Accept(); });
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
}

std::shared_ptr<SessionBase> HttpServer::Impl::MakeSession(tcp::socket socket,
                                                           const net::IpAddress& peer,
                                                           std::string peer_text) {
  if (tls_.has_value()) {
    return std::make_shared<Session<TlsStream>>(this, peer, std::move(peer_text), std::move(socket),
                                                *tls_);
  }
  return std::make_shared<Session<PlainStream>>(this, peer, std::move(peer_text),
                                                std::move(socket));
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!stopping() && acceptor_.is_open()) Accept();
      return;
    }
    beast::error_code ignored;
    auto endpoint = socket.remote_endpoint(ec);
    if (ec) {  // already gone
      socket.close(ignored);
      return Accept();
    }
    socket.set_option(tcp::no_delay(true), ignored);
    net::IpAddress peer = FromAsio(endpoint.address());
    std::string client = IsTrustedProxy(peer, options_.trusted_proxies) ? "" : peer.ToString();
    auto session = MakeSession(std::move(socket), peer,
                               absl::StrCat(endpoint.address().to_string(), ":", endpoint.port()));
    std::shared_ptr<SessionBase> victim;
    switch (Admit(session, client, &victim)) {
      case Admission::kAdmitted:
        session->Start();
        break;
      // Counted once refused, so the count never runs ahead of what clients have received.
      case Admission::kClientLimit:
        session->Refuse(client_limit_answer_);
        RefusedConnections("client_limit")->Inc();
        break;
      case Admission::kGlobalLimit:
        session->Refuse(global_limit_answer_);
        RefusedConnections("global_limit")->Inc();
        break;
    }
    if (victim != nullptr) {
      log::Get("gateway")->debug("at max_connections: closing the longest idle connection");
      EvictedConnections()->Inc();
      asio::post(victim->executor(), [victim] { victim->CloseIfIdle(); });
    }
    Accept();
  });
}

HttpServer::Impl::Admission HttpServer::Impl::Admit(const std::shared_ptr<SessionBase>& session,
                                                    const std::string& client,
                                                    std::shared_ptr<SessionBase>* victim) {
  std::lock_guard lock(mu_);
  if (!client.empty()) {
    auto it = per_client_.find(client);
    if (it != per_client_.end() && it->second >= per_client_limit()) {
      return Admission::kClientLimit;
    }
  }
  if (connections_.size() - counts_[State::kClosing] >=
      std::max<size_t>(1, options_.max_connections)) {
    Connection* oldest = nullptr;
    for (auto& [raw, c] : connections_) {
      if (c.state == State::kIdle && (oldest == nullptr || c.idle_since < oldest->idle_since)) {
        oldest = &c;
      }
    }
    if (oldest == nullptr) return Admission::kGlobalLimit;
    SetState(oldest, State::kClosing);
    // Null if it is being destroyed right now: its slot frees itself then.
    *victim = oldest->session.lock();
  }
  Connection& c = connections_[session.get()];
  c.session = session;
  c.client = client;
  ++counts_[c.state];
  if (!client.empty()) ++per_client_[client];
  UpdateGauges();
  return Admission::kAdmitted;
}

void HttpServer::Impl::Unregister(SessionBase* session) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(session);
  if (it == connections_.end()) return;  // refused before admission
  --counts_[it->second.state];
  if (!it->second.client.empty()) {
    auto count = per_client_.find(it->second.client);
    if (--count->second == 0) per_client_.erase(count);
  }
  connections_.erase(it);
  UpdateGauges();
  if (connections_.empty()) cv_.notify_all();
}

void HttpServer::Impl::SetState(Connection* c, State state) {
  --counts_[c->state];
  ++counts_[state];
  c->state = state;
  if (state == State::kIdle) c->idle_since = std::chrono::steady_clock::now();
  UpdateGauges();
}

void HttpServer::Impl::UpdateGauges() {
  OpenConnections()->Set(static_cast<int64_t>(connections_.size() - counts_[State::kClosing]));
  IdleConnections()->Set(static_cast<int64_t>(counts_[State::kIdle]));
}

void HttpServer::Impl::MarkIdle(SessionBase* session) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(session);
  if (it == connections_.end() || it->second.state == State::kClosing) return;
  SetState(&it->second, State::kIdle);
}

bool HttpServer::Impl::MarkBusy(SessionBase* session) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(session);
  if (it == connections_.end() || it->second.state == State::kClosing) return false;
  SetState(&it->second, State::kBusy);
  return true;
}

void HttpServer::Impl::MarkClosing(SessionBase* session) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(session);
  if (it == connections_.end() || it->second.state == State::kClosing) return;
  SetState(&it->second, State::kClosing);
}

bool HttpServer::Impl::AcquireRequestSlot(const std::string& client) {
  std::lock_guard lock(mu_);
  size_t& count = requests_in_flight_[client];
  if (count >= per_client_limit()) return false;
  ++count;
  return true;
}

void HttpServer::Impl::ReleaseRequestSlot(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = requests_in_flight_.find(client);
  if (it != requests_in_flight_.end() && --it->second == 0) requests_in_flight_.erase(it);
}

void HttpServer::Impl::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true, std::memory_order_release);
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  // The sessions are pinned outside mu_: the last reference to one may be dropped here, and its
  // destructor unregisters under mu_ (dropping it under the lock deadlocked the shutdown).
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard lock(mu_);
    for (auto& [raw, c] : connections_) {
      if (auto s = c.session.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) asio::post(s->executor(), [s] { s->CloseIfIdle(); });
  open.clear();
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, grace, [this] { return connections_.empty(); });
  if (!connections_.empty()) {
    log::Get("gateway")->warn("{} HTTP connection(s) still busy after the shutdown grace period",
                              connections_.size());
  }
  lock.unlock();
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

absl::StatusOr<std::string> HttpServer::Bind() { return impl_->Bind(); }
void HttpServer::Start() { impl_->Start(); }
void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }

}  // namespace submarine::gateway
