#include "tests/support/fake_kube/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace submarine::testing::fake_kube {
namespace {

const char* StatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Request Entity Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool SendAll(int fd, const std::string& data) { return SendAll(fd, data.data(), data.size()); }

// Buffered reads from a connection.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  // Reads until `delim` is buffered (at most `max` bytes); false on EOF, error or overflow.
  bool ReadUntil(const std::string& delim, size_t max, std::string* out) {
    while (true) {
      size_t pos = buffer_.find(delim);
      if (pos != std::string::npos) {
        *out = buffer_.substr(0, pos);
        buffer_.erase(0, pos + delim.size());
        return true;
      }
      if (buffer_.size() > max || !Fill()) return false;
    }
  }
  bool ReadExactly(size_t n, std::string* out) {
    while (buffer_.size() < n) {
      if (!Fill()) return false;
    }
    out->append(buffer_, 0, n);
    buffer_.erase(0, n);
    return true;
  }
  bool Buffered() const { return !buffer_.empty(); }

 private:
  bool Fill() {
    char chunk[65536];
    while (true) {
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }
  int fd_;
  std::string buffer_;
};

class ConnectionResponder : public HttpResponder {
 public:
  ConnectionResponder(int fd, bool close_after) : fd_(fd), close_after_(close_after) {}

  void Respond(int status, const std::string& content_type, const std::string& body,
               const HttpHeaders& headers) override {
    if (state_ != State::kNone) return;
    state_ = State::kDone;
    std::string head = absl::StrCat("HTTP/1.1 ", status, " ", StatusText(status), "\r\n",
                                    "Content-Type: ", content_type, "\r\n",
                                    "Content-Length: ", body.size(), "\r\n");
    if (close_after_) absl::StrAppend(&head, "Connection: close\r\n");
    for (const auto& [k, v] : headers) absl::StrAppend(&head, k, ": ", v, "\r\n");
    absl::StrAppend(&head, "\r\n");
    ok_ = SendAll(fd_, head) && SendAll(fd_, body);
  }

  bool StartStream(int status, const std::string& content_type,
                   const HttpHeaders& headers) override {
    if (state_ != State::kNone) return false;
    state_ = State::kStreaming;
    std::string head =
        absl::StrCat("HTTP/1.1 ", status, " ", StatusText(status), "\r\n",
                     "Content-Type: ", content_type, "\r\n", "Transfer-Encoding: chunked\r\n");
    if (close_after_) absl::StrAppend(&head, "Connection: close\r\n");
    for (const auto& [k, v] : headers) absl::StrAppend(&head, k, ": ", v, "\r\n");
    absl::StrAppend(&head, "\r\n");
    ok_ = SendAll(fd_, head);
    return ok_;
  }

  bool WriteChunk(const std::string& data) override {
    if (state_ != State::kStreaming || !ok_) return false;
    if (data.empty()) return true;
    std::string frame = absl::StrCat(absl::Hex(data.size()), "\r\n");
    frame.append(data);
    frame.append("\r\n");
    ok_ = SendAll(fd_, frame);
    return ok_;
  }

  bool PeerClosed() override {
    if (!ok_) return true;
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

  // Ends the answer; false when the connection cannot carry another request.
  bool Finish() {
    if (state_ == State::kNone) {
      Respond(500, "application/json",
              R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
              R"("message":"no answer","reason":"InternalError","code":500})",
              {});
    } else if (state_ == State::kStreaming && ok_) {
      ok_ = SendAll(fd_, "0\r\n\r\n");
    }
    return ok_ && !close_after_;
  }

 private:
  enum class State { kNone, kDone, kStreaming };
  int fd_;
  bool close_after_;
  State state_ = State::kNone;
  bool ok_ = true;
};

}  // namespace

std::string HttpRequest::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string PercentDecode(const std::string& text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

HttpServer::HttpServer(HttpHandler handler) : handler_(std::move(handler)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Bind(const std::string& address, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", address));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 512) != 0) {
    return absl::InternalError(absl::StrCat("bind/listen: ", std::strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  return ntohs(addr.sin_port);
}

void HttpServer::Serve() {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

void HttpServer::Stop() {
  std::list<std::unique_ptr<Connection>> connections;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& c : connections_) ::shutdown(c->fd, SHUT_RDWR);
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (auto& c : connections) {
    if (c->thread.joinable()) c->thread.join();
    ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void HttpServer::ReapLocked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      ::close((*it)->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval idle{300, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
    timeval send_timeout{60, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    absl::MutexLock lock(&mu_);
    ReapLocked();
    if (stopping_ || connections_.size() >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    connections_.push_back(std::move(connection));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void HttpServer::Serve(Connection* connection) {
  const int fd = connection->fd;
  Reader reader(fd);
  while (true) {
    std::string head;
    if (!reader.ReadUntil("\r\n\r\n", kMaxHeaderBytes, &head)) break;
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
    if (request_line.size() != 3) {
      SendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      break;
    }
    HttpRequest request;
    request.method = request_line[0];
    request.target = request_line[1];
    size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      request.headers.emplace_back(
          absl::AsciiStrToLower(lines[i].substr(0, colon)),
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    bool close_after = request_line[2] == "HTTP/1.0" ||
                       absl::EqualsIgnoreCase(request.Header("connection"), "close");
    if (absl::EqualsIgnoreCase(request.Header("expect"), "100-continue")) {
      SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    bool body_ok = true;
    if (absl::EqualsIgnoreCase(request.Header("transfer-encoding"), "chunked")) {
      while (true) {
        std::string size_line;
        size_t size = 0;
        if (!reader.ReadUntil("\r\n", 1024, &size_line) ||
            !absl::SimpleHexAtoi(size_line.substr(0, size_line.find(';')), &size) ||
            request.body.size() + size > kMaxBodyBytes) {
          body_ok = false;
          break;
        }
        std::string crlf;
        if (size == 0) {
          // Trailers (none expected) end with an empty line.
          std::string trailer;
          while (reader.ReadUntil("\r\n", 8192, &trailer) && !trailer.empty()) {
          }
          break;
        }
        if (!reader.ReadExactly(size, &request.body) || !reader.ReadExactly(2, &crlf)) {
          body_ok = false;
          break;
        }
      }
    } else if (std::string length = request.Header("content-length"); !length.empty()) {
      size_t n = 0;
      if (!absl::SimpleAtoi(length, &n) || n > kMaxBodyBytes ||
          !reader.ReadExactly(n, &request.body)) {
        body_ok = false;
      }
    }
    if (!body_ok) {
      SendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      break;
    }
    ConnectionResponder responder(fd, close_after);
    handler_(request, responder);
    if (!responder.Finish()) break;
  }
  ::shutdown(fd, SHUT_RDWR);
  connection->done.store(true);
}

}  // namespace submarine::testing::fake_kube
