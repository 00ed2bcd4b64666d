// The only translation unit that includes Boost.Beast (it compiles slowly).
#include "gateway/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/net/address.h"
#include "common/status/status.h"

namespace submarine::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

// The whole answer to a connection beyond max_connections (AIP-193 error, then close).
std::string BusyResponse() {
  const std::string body =
      "{\"error\":{\"code\":503,\"message\":\"The gateway is at its connection limit; "
      "retry later\",\"status\":\"UNAVAILABLE\",\"details\":[]}}";
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         "Connection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

submarine::metrics::Counter* RejectedConnections() {
  static auto* counter = submarine::metrics::Registry::Global().GetCounter(
      "submarine_gateway_rejected_connections_total",
      "Connections refused because the gateway was at max_connections");
  return counter;
}

constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(1);

std::string ToString(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string Lower(beast::string_view s) {
  std::string out(s.data(), s.size());
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

class Session;

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ioc_(std::max(1, options_.io_threads)),
        acceptor_(asio::make_strand(ioc_)),
        work_(asio::make_work_guard(ioc_)) {}

  absl::StatusOr<std::string> Bind();
  void Start();
  void Stop(std::chrono::milliseconds grace);

  const HttpServerOptions& options() const { return options_; }
  const HttpHandler& handler() const { return handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void Register(const std::shared_ptr<Session>& session);
  void Unregister(Session* session);
  // True when max_connections sessions are open.
  bool AtCapacity();

 private:
  void Accept();

  HttpServerOptions options_;
  HttpHandler handler_;
  std::atomic<bool> stopping_{false};
  // Declared before the io_context: sessions destroyed with its queued handlers unregister here.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Session*, std::weak_ptr<Session>> sessions_;
  bool started_ = false;
  bool stopped_ = false;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// One keep-alive connection. All its handlers run on its strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}
  ~Session() { server_->Unregister(this); }

  auto executor() { return stream_.get_executor(); }

  void Start() {
    asio::dispatch(executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Closes the connection if it is waiting for a new request (graceful stop). On the strand.
  void CloseIfIdle() {
    if (idle_) {
      beast::error_code ec;
      stream_.socket().cancel(ec);
    }
  }

  // Sends the answer to the current request. On the strand.
  void Write(HttpResponse r) {
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(r.status));
    if (r.status == 499) response_.reason("Client Closed Request");
    response_.set(http::field::server, "submarine-gateway");
    response_.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) response_.insert(k, v);
    response_.body() = std::move(r.body);
    response_.keep_alive(keep_alive_ && !server_->stopping());
    response_.prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

 private:
  void ReadHeader() {
    if (server_->stopping()) return Close();
    idle_ = true;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options().max_header_bytes));
    parser_->body_limit(server_->options().max_body_bytes);
    stream_.expires_after(server_->options().idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    idle_ = false;
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return Dispatch(0);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      interim_ = {};
      interim_.version(parser_->get().version());
      interim_.result(http::status::continue_);
      http::async_write(stream_, interim_,
                        [self = shared_from_this()](beast::error_code wec, size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, shared_from_this()));
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

  void OnWrite(beast::error_code ec, size_t) {
    if (ec || !response_.keep_alive()) return Close();
    ReadHeader();
  }

  // Stops sending, then reads (and drops) what the client still sends for a short while, so an
  // unread request body does not turn the close into a reset that loses our answer.
  void Close() {
    if (closing_) return;
    closing_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return stream_.close();
    stream_.expires_after(kLingerTimeout);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->stream_.close();
                              self->Drain();
                            });
  }

  friend class Exchange;
  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  http::response<http::empty_body> interim_;
  std::array<char, 4096> drain_buffer_{};
  std::string peer_;  // "ip:port", looked up once per connection
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool idle_ = false;
  bool closing_ = false;
};

class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Session> session, HttpRequest request)
      : session_(std::move(session)), request_(std::move(request)) {}

  ~Exchange() override {
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

 private:
  std::shared_ptr<Session> session_;
  HttpRequest request_;
  std::atomic<bool> responded_{false};
};

void Session::Dispatch(int rejected_status) {
  HttpRequest request;
  request.rejected_status = rejected_status;
  const auto& msg = parser_->get();
  version_ = msg.version() == 10 ? 10 : 11;
  keep_alive_ = rejected_status == 0 && msg.keep_alive();
  request.method = ToString(msg.method_string());
  request.target = ToString(msg.target());
  size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  for (const auto& field : msg) {
    request.headers.emplace_back(Lower(field.name_string()), ToString(field.value()));
  }
  if (rejected_status == 0) request.body = std::move(parser_->get().body());
  if (peer_.empty()) {
    beast::error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = absl::StrCat(peer.address().to_string(), ":", peer.port());
  }
  request.peer = peer_;
  // The deadline of the backend call bounds the wait; no socket timer while the handler works.
  stream_.expires_never();
  server_->handler()(std::make_shared<Exchange>(shared_from_this(), std::move(request)));
}

absl::StatusOr<std::string> HttpServer::Impl::Bind() {
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

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!stopping() && acceptor_.is_open()) Accept();
      return;
    }
    beast::error_code ignored;
    if (AtCapacity()) {
      static const std::string kBusy = BusyResponse();
      asio::write(socket, asio::buffer(kBusy), ignored);
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      RejectedConnections()->Inc();
      Accept();
      return;
    }
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(std::move(socket), this);
    Register(session);
    session->Start();
    Accept();
  });
}

bool HttpServer::Impl::AtCapacity() {
  std::lock_guard lock(mu_);
  return sessions_.size() >= std::max<size_t>(1, options_.max_connections);
}

void HttpServer::Impl::Register(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mu_);
  sessions_[session.get()] = session;
}

void HttpServer::Impl::Unregister(Session* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
  if (sessions_.empty()) cv_.notify_all();
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
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(mu_);
    for (auto& [raw, weak] : sessions_) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) asio::post(s->executor(), [s] { s->CloseIfIdle(); });
  open.clear();
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, grace, [this] { return sessions_.empty(); });
  if (!sessions_.empty()) {
    log::Get("gateway")->warn("{} HTTP connection(s) still busy after the shutdown grace period",
                              sessions_.size());
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
