#include "common/net/http_json.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace submarine::net {
namespace {

struct AnswerSink {
  std::string* body;
  int64_t limit;
  bool over = false;
};

size_t CollectAnswer(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<AnswerSink*>(user);
  if (static_cast<int64_t>(sink->body->size() + size * count) > sink->limit) {
    sink->over = true;
    return 0;
  }
  sink->body->append(data, size * count);
  return size * count;
}

}  // namespace

HttpJsonClient::HttpJsonClient(std::chrono::milliseconds timeout, int64_t max_answer_bytes)
    : timeout_(timeout), max_answer_bytes_(max_answer_bytes) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<HttpAnswer> HttpJsonClient::Send(const std::string& method, const std::string& url,
                                                const std::string& body) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::ResourceExhaustedError("cannot create a curl handle");
  const std::string what = absl::StrCat(method, " ", url.substr(0, 200));
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  HttpAnswer answer;
  AnswerSink sink{&answer.body, max_answer_bytes_};
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectAnswer);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (sink.over) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": the answer is over the limit"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

}  // namespace submarine::net
