#include "clients/cli/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// One header line of the answer. A status line ("HTTP/1.1 100 Continue", then the final one)
// starts a new header block, so only the final response's headers are kept.
size_t AppendHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<HttpHeaders*>(user);
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    headers->emplace_back(std::move(name), std::move(value));
  }
  return size * count;
}

// A streamed answer being received: 2xx bodies go to the caller as they arrive, others are
// kept whole (an error answer).
struct StreamSink {
  CURL* curl;
  const std::function<bool(std::string_view)>* on_data;
  std::string* error_body;
};

size_t DeliverBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<StreamSink*>(user);
  long status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    sink->error_body->append(data, size * count);
    return size * count;
  }
  // Returning less than was given makes libcurl stop with CURLE_WRITE_ERROR.
  return (*sink->on_data)(std::string_view(data, size * count)) ? size * count : 0;
}

absl::StatusCode CodeFromHttpStatus(long status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAborted;
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return status >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kUnknown;
  }
}

}  // namespace

struct HttpClient::Handle {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{curl_easy_init(), curl_easy_cleanup};
};

HttpClient::HttpClient(std::string base_url, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  GlobalInitOnce();
  handle_ = std::make_unique<Handle>();
}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Send(const std::string& method,
                                              const std::string& path_and_query,
                                              const std::string& body,
                                              const HttpHeaders& extra_headers) {
  CURL* h = handle_->curl.get();
  if (h == nullptr) return Internal("curl_easy_init failed");
  // Options go back to their defaults (a GET must not inherit the last POST's body); the
  // connection cache is kept.
  curl_easy_reset(h);
  std::string url = base_url_ + path_and_query;
  HttpResponse response;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  // No "Expect: 100-continue" round trip before larger bodies.
  headers = curl_slist_append(headers, "Expect:");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  for (const auto& [name, value] : extra_headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers,
                                                                          curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  if (!body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(absl::StrCat(method, " ", url, ": timed out"));
  }
  if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return InvalidField("server", absl::StrCat("cannot use \"", base_url_,
                                               "\" as a server URL: ", curl_easy_strerror(rc)));
  }
  if (rc != CURLE_OK) {
    return Unavailable(absl::StrCat("cannot reach ", base_url_, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

absl::StatusOr<HttpResponse> HttpClient::Stream(
    const std::string& method, const std::string& path_and_query, const HttpHeaders& extra_headers,
    const std::function<bool(std::string_view)>& on_data) {
  CURL* h = handle_->curl.get();
  if (h == nullptr) return Internal("curl_easy_init failed");
  curl_easy_reset(h);
  std::string url = base_url_ + path_and_query;
  HttpResponse response;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/x-ndjson");
  for (const auto& [name, value] : extra_headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers,
                                                                          curl_slist_free_all);
  StreamSink sink{h, &on_data, &response.body};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // No overall timeout: a followed log streams for as long as its task runs.
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, DeliverBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc == CURLE_WRITE_ERROR) return response;  // the caller stopped the stream
  if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return InvalidField("server", absl::StrCat("cannot use \"", base_url_,
                                               "\" as a server URL: ", curl_easy_strerror(rc)));
  }
  if (rc != CURLE_OK) {
    return Unavailable(
        absl::StrCat(response.status == 0 ? "cannot reach " : "lost the stream from ", base_url_,
                     ": ", curl_easy_strerror(rc)));
  }
  return response;
}

std::string UrlEncode(const std::string& value) {
  GlobalInitOnce();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  char* escaped = curl_easy_escape(curl.get(), value.data(), static_cast<int>(value.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

std::string HeaderValue(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response,
                                                    int64_t now_unix) {
  std::string value = HeaderValue(response, "retry-after");
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (!absl::SimpleAtoi(value, &seconds)) return std::nullopt;
  } else {
    time_t at = curl_getdate(value.c_str(), nullptr);
    if (at < 0) return std::nullopt;
    seconds = std::max<int64_t>(0, static_cast<int64_t>(at) - now_unix);
  }
  return std::chrono::milliseconds(std::min<int64_t>(seconds, 86400) * 1000);
}

absl::StatusCode CodeFromName(const std::string& name) {
  for (int code = 0; code <= 16; ++code) {
    if (name == CodeName(code)) return static_cast<absl::StatusCode>(code);
  }
  return absl::StatusCode::kUnknown;
}

std::string ErrorReason(const HttpResponse& response) {
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
  const auto& error = body["error"];
  if (!error.contains("details") || !error["details"].is_array()) return "";
  for (const auto& detail : error["details"]) {
    if (detail.is_object() &&
        detail.value("@type", "") == "type.googleapis.com/google.rpc.ErrorInfo" &&
        detail.contains("reason") && detail["reason"].is_string()) {
      return detail["reason"].get<std::string>();
    }
  }
  return "";
}

absl::Status StatusFromResponse(const HttpResponse& response) {
  if (response.status >= 200 && response.status < 300) return absl::OkStatus();
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  absl::StatusCode code = CodeFromHttpStatus(response.status);
  std::string message =
      response.body.empty() ? absl::StrCat("HTTP ", response.status) : response.body;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& error = body["error"];
    if (error.contains("status") && error["status"].is_string()) {
      absl::StatusCode named = CodeFromName(error["status"].get<std::string>());
      if (named != absl::StatusCode::kUnknown) code = named;
    }
    if (error.contains("message") && error["message"].is_string()) {
      message = error["message"].get<std::string>();
    }
  }
  return absl::Status(code, message);
}

}  // namespace submarine::cli
