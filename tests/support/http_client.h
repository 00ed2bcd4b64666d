#pragma once
// A minimal blocking HTTP/1.1 client for tests and benchmarks: one keep-alive TCP connection,
// requests written whole, responses read by Content-Length. Not thread-safe (one per thread).

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  // The header's value, empty if absent.
  std::string Header(const std::string& name) const;
};

class HttpConnection {
 public:
  HttpConnection() = default;
  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&& other) noexcept;
  ~HttpConnection();

  // Connects to "host:port" (receive timeout 30 s).
  static absl::StatusOr<HttpConnection> Connect(const std::string& address);

  // Sends one request (Host and Content-Length added) and reads the answer (a chunked body
  // whole). UNAVAILABLE if the
  // connection was closed or reset.
  absl::StatusOr<HttpResult> Request(
      const std::string& method, const std::string& target, const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Sends one request and reads only the status line and headers; a chunked body is then read
  // with ReadChunk(). For streamed answers (NDJSON, server-sent events).
  absl::StatusOr<HttpResult> StartRequest(
      const std::string& method, const std::string& target, const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // The next chunk's data; "" for the last chunk. UNAVAILABLE if the connection closed first.
  absl::StatusOr<std::string> ReadChunk();
  // Closes the connection now (a client that goes away mid-answer).
  void Close();

  // Sends `raw` bytes as they are and reads one answer. A failure to send all of `raw` (the
  // server may close early) is ignored as long as an answer arrives.
  absl::StatusOr<HttpResult> SendRaw(const std::string& raw);

  // Sends `bytes` as they are and reads nothing (a request written in pieces). May run on one
  // thread while another waits in ReadAnswer() (they share only the socket). UNAVAILABLE if the
  // connection was closed or reset.
  absl::Status SendBytes(std::string_view bytes);
  // Reads one answer (a chunked body whole), e.g. after SendBytes.
  absl::StatusOr<HttpResult> ReadAnswer();

  // True once the server has closed its side (after an answer with Connection: close).
  bool PeerClosed();

 private:
  absl::Status Send(const std::string& method, const std::string& target, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& headers);
  absl::StatusOr<HttpResult> ReadResponse();  // a chunked body is read whole
  absl::StatusOr<HttpResult> ReadHead();
  absl::Status Fill();

  int fd_ = -1;
  std::string host_;
  std::string buffer_;
};

// One request on a fresh connection.
absl::StatusOr<HttpResult> HttpCall(
    const std::string& address, const std::string& method, const std::string& target,
    const std::string& body = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace submarine::testing
