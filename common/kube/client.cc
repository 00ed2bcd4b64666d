#include "common/kube/client.h"

#include <curl/curl.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::kube {
namespace {

using json = nlohmann::json;

constexpr char kReasonPayload[] = "submarine.kube/reason";
constexpr int64_t kMaxAnswerBytes = 256 << 20;  // a LIST of 10,000 jobs is well under this

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Answer {
  std::string* body;
  bool too_large = false;
};

// Calls `on_started` once, at the blank line that ends the answer's headers.
struct HeadersEnd {
  const std::function<void()>* on_started;
  bool called = false;
};

size_t CallAtHeadersEnd(char* data, size_t size, size_t count, void* user) {
  auto* end = static_cast<HeadersEnd*>(user);
  std::string_view line(data, size * count);
  if (!end->called && (line == "\r\n" || line == "\n")) {
    end->called = true;
    (*end->on_started)();
  }
  return size * count;
}

size_t AppendAnswer(char* data, size_t size, size_t count, void* user) {
  auto* answer = static_cast<Answer*>(user);
  if (static_cast<int64_t>(answer->body->size() + size * count) > kMaxAnswerBytes) {
    answer->too_large = true;
    return 0;
  }
  answer->body->append(data, size * count);
  return size * count;
}

struct WatchState {
  std::string buffer;
  const std::function<bool(const WatchEvent&)>* on_event = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  absl::Status error;    // an ERROR event or an unreadable line
  bool stopped = false;  // on_event asked to stop
  long http_status = 0;
  std::string error_body;  // a non-200 answer's body
};

int WatchProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* state = static_cast<WatchState*>(user);
  return state->cancel != nullptr && state->cancel->load() ? 1 : 0;
}

size_t WatchWrite(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<WatchState*>(user);
  const size_t n = size * count;
  if (state->cancel != nullptr && state->cancel->load()) return 0;
  if (state->http_status != 200) {
    state->error_body.append(data, n);
    return n;
  }
  state->buffer.append(data, n);
  size_t start = 0;
  while (true) {
    size_t end = state->buffer.find('\n', start);
    if (end == std::string::npos) break;
    std::string_view line(state->buffer.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded() || !event.is_object() || !event.contains("type")) {
      state->error = absl::UnavailableError("watch: an event that is not JSON");
      return 0;
    }
    WatchEvent e{event.value("type", ""), event.value("object", json::object())};
    if (e.type == "ERROR") {
      state->error = StatusFromAnswer(e.object.value("code", 500), e.object.dump(), "watch");
      return 0;
    }
    if (!(*state->on_event)(e)) {
      state->stopped = true;
      return 0;
    }
  }
  state->buffer.erase(0, start);
  if (state->buffer.size() > static_cast<size_t>(kMaxAnswerBytes)) {
    state->error = absl::UnavailableError("watch: an event larger than the limit");
    return 0;
  }
  return n;
}

size_t ReadHeaderStatus(char* data, size_t size, size_t count, void* user) {
  // "HTTP/1.1 200 OK": the status of the final answer decides how the body is read.
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    auto space = line.find(' ');
    if (space != std::string_view::npos) {
      static_cast<WatchState*>(user)->http_status =
          std::strtol(std::string(line.substr(space + 1, 3)).c_str(), nullptr, 10);
    }
  }
  return size * count;
}

}  // namespace

bool IsExpired(const absl::Status& status) {
  auto reason = status.GetPayload(kReasonPayload);
  return reason.has_value() && std::string(*reason) == "Expired";
}

absl::Status StatusFromAnswer(long http_status, const std::string& body, const std::string& what) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  json status = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string reason;
  std::string message;
  if (status.is_object()) {
    reason = status.value("reason", "");
    message = status.value("message", "");
  }
  if (message.empty()) message = QuoteInput(body, 200);
  message = absl::StrCat(what, ": ", message);
  switch (http_status) {
    case 400:
    case 422:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return reason == "AlreadyExists" ? absl::AlreadyExistsError(message)
                                       : absl::AbortedError(message);
    case 410: {
      absl::Status s = absl::FailedPreconditionError(message);
      s.SetPayload(kReasonPayload, absl::Cord("Expired"));
      return s;
    }
    case 415:
      return absl::InvalidArgumentError(message);
    default:
      if (http_status == 429 || http_status >= 500 || http_status == 0) {
        return absl::UnavailableError(message);
      }
      return absl::UnknownError(message);
  }
}

std::string QueryEscape(const std::string& value) {
  GlobalInitOnce();
  char* escaped = curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

// ---- Configuration ----

absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "kubeconfig"));
  return ParseKubeconfig(text, context, std::filesystem::path(path).parent_path().string(), path);
}

absl::StatusOr<ClusterConfig> ParseKubeconfig(const std::string& text, const std::string& context,
                                              const std::string& dir, const std::string& origin) {
  const std::string& path = origin;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidField("kubeconfig", absl::StrCat(path, " is not YAML: ", e.msg));
  }
  auto relative = [&](const std::string& file) {
    return file.empty() || file[0] == '/' || dir.empty() ? file : absl::StrCat(dir, "/", file);
  };
  auto find = [&](const char* list, const std::string& name) -> YAML::Node {
    if (root[list] && root[list].IsSequence()) {
      for (const YAML::Node& item : root[list]) {
        if (item["name"] && item["name"].as<std::string>() == name) return item;
      }
    }
    return YAML::Node();
  };
  auto str = [](const YAML::Node& node, const char* key) {
    return node && node[key] && node[key].IsScalar() ? node[key].as<std::string>() : std::string();
  };
  auto decode = [](const std::string& base64, const std::string& field,
                   std::string* out) -> absl::Status {
    if (base64.empty()) return absl::OkStatus();
    if (!absl::Base64Unescape(base64, out)) return InvalidField(field, "is not base64");
    return absl::OkStatus();
  };
  try {
    const std::string name = context.empty() ? str(root, "current-context") : context;
    if (name.empty()) return InvalidField("kubeconfig", "names no current-context");
    YAML::Node ctx = find("contexts", name)["context"];
    if (!ctx) return InvalidField("kubeconfig", absl::StrCat("has no context \"", name, "\""));
    YAML::Node cluster = find("clusters", str(ctx, "cluster"))["cluster"];
    if (!cluster) {
      return InvalidField("kubeconfig", absl::StrCat("context \"", name, "\" names no cluster"));
    }
    ClusterConfig config;
    config.server = str(cluster, "server");
    if (config.server.empty()) return InvalidField("kubeconfig", "the cluster has no server");
    config.ca_file = relative(str(cluster, "certificate-authority"));
    SUBMARINE_RETURN_IF_ERROR(decode(str(cluster, "certificate-authority-data"),
                                     "kubeconfig.certificate-authority-data", &config.ca_data));
    config.insecure_skip_tls_verify = str(cluster, "insecure-skip-tls-verify") == "true";
    if (!str(ctx, "namespace").empty()) config.namespace_ = str(ctx, "namespace");
    const std::string user_name = str(ctx, "user");
    YAML::Node user = find("users", user_name)["user"];
    if (user) {
      if (user["exec"] || user["auth-provider"]) {
        return absl::UnimplementedError(absl::StrCat(
            "kubeconfig user \"", user_name,
            "\" uses an exec or auth-provider plugin; give it a token or a client certificate"));
      }
      config.token = str(user, "token");
      config.token_file = relative(str(user, "tokenFile"));
      config.client_cert_file = relative(str(user, "client-certificate"));
      config.client_key_file = relative(str(user, "client-key"));
      SUBMARINE_RETURN_IF_ERROR(decode(str(user, "client-certificate-data"),
                                       "kubeconfig.client-certificate-data",
                                       &config.client_cert_data));
      SUBMARINE_RETURN_IF_ERROR(decode(str(user, "client-key-data"), "kubeconfig.client-key-data",
                                       &config.client_key_data));
    }
    return config;
  } catch (const YAML::Exception& e) {
    return InvalidField("kubeconfig", absl::StrCat(path, ": ", e.msg));
  }
}

absl::StatusOr<ClusterConfig> InClusterConfig(const std::string& account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr) {
    return absl::FailedPreconditionError(
        "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT are not set)");
  }
  ClusterConfig config;
  const std::string h = host;
  config.server =
      absl::StrCat("https://", h.find(':') != std::string::npos ? "[" + h + "]" : h, ":", port);
  config.token_file = account_dir + "/token";
  config.ca_file = account_dir + "/ca.crt";
  auto ns = ReadFile(account_dir + "/namespace", "service account namespace");
  if (ns.ok()) config.namespace_ = std::string(absl::StripAsciiWhitespace(*ns));
  return config;
}

// ---- Client ----

struct Client::Shared {
  std::mutex mu;
  std::vector<CURL*> idle;  // handles keep their connections between calls
  ~Shared() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }
};

Client::Client(ClusterConfig config) : config_(std::move(config)), shared_(new Shared) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClusterConfig config) {
  if (!absl::StartsWith(config.server, "http://") && !absl::StartsWith(config.server, "https://")) {
    return InvalidField("server",
                        absl::StrCat("\"", QuoteInput(config.server), "\" is not an http(s) URL"));
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  GlobalInitOnce();
  return std::unique_ptr<Client>(new Client(std::move(config)));
}

namespace {

// A borrowed curl handle, returned to the pool (reset) when done.
class Handle {
 public:
  Handle(std::mutex* mu, std::vector<CURL*>* idle) : mu_(mu), idle_(idle) {
    std::lock_guard lock(*mu_);
    if (!idle_->empty()) {
      curl_ = idle_->back();
      idle_->pop_back();
    }
    if (curl_ == nullptr)
      curl_ = curl_easy_init();
    else
      curl_easy_reset(curl_);
  }
  ~Handle() {
    if (curl_ == nullptr) return;
    std::lock_guard lock(*mu_);
    if (idle_->size() < 8) {
      idle_->push_back(curl_);
    } else {
      curl_easy_cleanup(curl_);
    }
  }
  CURL* get() const { return curl_; }

 private:
  std::mutex* mu_;
  std::vector<CURL*>* idle_;
  CURL* curl_ = nullptr;
};

// Sets URL, TLS and authentication; fills `headers` (freed by the caller).
absl::Status Prepare(CURL* curl, const ClusterConfig& config, const std::string& url,
                     curl_slist** headers) {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!config.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config.ca_file.c_str());
  if (!config.ca_data.empty()) {
    curl_blob blob{const_cast<char*>(config.ca_data.data()), config.ca_data.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (config.insecure_skip_tls_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!config.client_cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, config.client_cert_file.c_str());
  }
  if (!config.client_key_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, config.client_key_file.c_str());
  }
  if (!config.client_cert_data.empty()) {
    curl_blob blob{const_cast<char*>(config.client_cert_data.data()),
                   config.client_cert_data.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!config.client_key_data.empty()) {
    curl_blob blob{const_cast<char*>(config.client_key_data.data()), config.client_key_data.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  std::string token = config.token;
  if (!config.token_file.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string t, ReadFile(config.token_file, "token file"));
    token = std::string(absl::StripAsciiWhitespace(t));
  }
  *headers = curl_slist_append(*headers, "Accept: application/json");
  if (!token.empty()) {
    *headers = curl_slist_append(*headers, absl::StrCat("Authorization: Bearer ", token).c_str());
  }
  return absl::OkStatus();
}

absl::Status TransportError(CURLcode code, const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(code)));
}

}  // namespace

absl::StatusOr<long> Client::Send(const std::string& method, const std::string& path_and_query,
                                  const std::string& body, const std::string& content_type,
                                  std::string* answer, const std::function<void()>& on_started,
                                  std::optional<std::chrono::milliseconds> timeout) {
  Handle handle(&shared_->mu, &shared_->idle);
  CURL* curl = handle.get();
  if (curl == nullptr) return absl::ResourceExhaustedError("cannot create a curl handle");
  const std::string what = absl::StrCat(method, " ", path_and_query.substr(0, 200));
  curl_slist* headers = nullptr;
  absl::Status prepared = Prepare(curl, config_, config_.server + path_and_query, &headers);
  if (!prepared.ok()) {
    curl_slist_free_all(headers);
    return prepared;
  }
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, absl::StrCat("Content-Type: ", content_type).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(timeout.value_or(config_.timeout).count()));
  answer->clear();
  Answer sink{answer};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendAnswer);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  HeadersEnd headers_end{on_started ? &on_started : nullptr};
  if (on_started) {
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CallAtHeadersEnd);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers_end);
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  requests_.fetch_add(1);
  if (sink.too_large) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": the answer is over the limit"));
  }
  if (rc != CURLE_OK) return TransportError(rc, what);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

namespace {
absl::StatusOr<json> ParseObject(const std::string& body, const std::string& what) {
  json out = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded() || !out.is_object()) {
    return absl::UnavailableError(absl::StrCat(what, ": the answer is not a JSON object"));
  }
  return out;
}
}  // namespace

absl::StatusOr<json> Client::Get(const std::string& path) {
  std::string body;
  SUBMARINE_ASSIGN_OR_RETURN(long status, Send("GET", path, "", "", &body));
  SUBMARINE_RETURN_IF_ERROR(StatusFromAnswer(status, body, "GET " + path));
  return ParseObject(body, "GET " + path);
}

absl::StatusOr<json> Client::Create(const std::string& collection_path, const json& object) {
  std::string body;
  SUBMARINE_ASSIGN_OR_RETURN(
      long status, Send("POST", collection_path, object.dump(), "application/json", &body));
  SUBMARINE_RETURN_IF_ERROR(StatusFromAnswer(status, body, "POST " + collection_path));
  return ParseObject(body, "POST " + collection_path);
}

absl::StatusOr<json> Client::MergePatch(const std::string& path, const json& patch) {
  std::string body;
  SUBMARINE_ASSIGN_OR_RETURN(
      long status, Send("PATCH", path, patch.dump(), "application/merge-patch+json", &body));
  SUBMARINE_RETURN_IF_ERROR(StatusFromAnswer(status, body, "PATCH " + path));
  return ParseObject(body, "PATCH " + path);
}

absl::Status Client::Delete(const std::string& path, const std::string& propagation_policy,
                            std::optional<int64_t> grace_period_seconds) {
  json options = {
      {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", propagation_policy}};
  if (grace_period_seconds) options["gracePeriodSeconds"] = *grace_period_seconds;
  std::string body;
  SUBMARINE_ASSIGN_OR_RETURN(long status,
                             Send("DELETE", path, options.dump(), "application/json", &body));
  return StatusFromAnswer(status, body, "DELETE " + path);
}

absl::StatusOr<ListResult> Client::List(const std::string& collection_path,
                                        const std::string& label_selector, int page_size) {
  ListResult out;
  std::string token;
  do {
    std::string query = absl::StrCat(collection_path, "?limit=", page_size);
    if (!label_selector.empty())
      absl::StrAppend(&query, "&labelSelector=", QueryEscape(label_selector));
    if (!token.empty()) absl::StrAppend(&query, "&continue=", QueryEscape(token));
    SUBMARINE_ASSIGN_OR_RETURN(json page, Get(query));
    if (page.contains("items") && page["items"].is_array()) {
      for (json& item : page["items"]) out.items.push_back(std::move(item));
    }
    const json& meta = page.value("metadata", json::object());
    token = meta.value("continue", "");
    out.resource_version = meta.value("resourceVersion", "");
  } while (!token.empty());
  return out;
}

absl::StatusOr<std::string> Client::GetText(const std::string& path_and_query,
                                            const std::function<void()>& on_started,
                                            std::optional<std::chrono::milliseconds> timeout) {
  std::string body;
  SUBMARINE_ASSIGN_OR_RETURN(long status,
                             Send("GET", path_and_query, "", "", &body, on_started, timeout));
  SUBMARINE_RETURN_IF_ERROR(StatusFromAnswer(status, body, "GET " + path_and_query));
  return body;
}

absl::StatusOr<bool> Client::Serves(const std::string& group_version, const std::string& plural) {
  const std::string path =
      group_version == "v1" ? std::string("/api/v1") : absl::StrCat("/apis/", group_version);
  auto list = Get(path);
  if (absl::IsNotFound(list.status())) return false;
  if (!list.ok()) return list.status();
  for (const json& r : list->value("resources", json::array())) {
    if (r.is_object() && r.value("name", "") == plural) return true;
  }
  return false;
}

absl::Status Client::Watch(const std::string& collection_path, const std::string& label_selector,
                           const std::string& resource_version, int timeout_seconds,
                           const std::function<bool(const WatchEvent&)>& on_event,
                           const std::atomic<bool>* cancel) {
  std::string query = absl::StrCat(collection_path, "?watch=1&allowWatchBookmarks=true",
                                   "&timeoutSeconds=", timeout_seconds);
  if (!resource_version.empty()) absl::StrAppend(&query, "&resourceVersion=", resource_version);
  if (!label_selector.empty()) {
    absl::StrAppend(&query, "&labelSelector=", QueryEscape(label_selector));
  }
  const std::string what = "WATCH " + collection_path;
  Handle handle(&shared_->mu, &shared_->idle);
  CURL* curl = handle.get();
  if (curl == nullptr) return absl::ResourceExhaustedError("cannot create a curl handle");
  curl_slist* headers = nullptr;
  absl::Status prepared = Prepare(curl, config_, config_.server + query, &headers);
  if (!prepared.ok()) {
    curl_slist_free_all(headers);
    return prepared;
  }
  WatchState state;
  state.on_event = &on_event;
  state.cancel = cancel;
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReadHeaderStatus);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WatchWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, WatchProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &state);
  // The server ends the stream after timeout_seconds; a silent dead connection is cut later.
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_seconds + 30) * 1000L);
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  requests_.fetch_add(1);
  if (!state.error.ok()) return state.error;
  if (state.stopped || (cancel != nullptr && cancel->load())) return absl::OkStatus();
  if (state.http_status != 0 && state.http_status != 200) {
    return StatusFromAnswer(state.http_status, state.error_body, what);
  }
  if (rc != CURLE_OK) return TransportError(rc, what);
  return absl::OkStatus();
}

}  // namespace submarine::kube
