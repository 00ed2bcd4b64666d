#pragma once
// A Kubernetes API client over libcurl: the JSON REST verbs a controller needs (get, list with
// label selectors and `continue` pages, create, merge-patch, delete with a grace period, pod
// logs) and watch streams, against any API server reachable over HTTP or HTTPS (a CA, a bearer
// token, a token file, a client certificate), configured from a kubeconfig or from inside a pod.
//
// Errors keep the API server's meaning (its `Status` object), mapped onto absl codes:
//   404 NotFound → NOT_FOUND; 409 AlreadyExists → ALREADY_EXISTS; 409 Conflict → ABORTED;
//   400 BadRequest / 422 Invalid → INVALID_ARGUMENT; 401 → UNAUTHENTICATED; 403 →
//   PERMISSION_DENIED; 410 Gone/Expired → FAILED_PRECONDITION with IsExpired() true;
//   429, 5xx, connection failures and timeouts → UNAVAILABLE (transient: retry, change nothing).
// The message is the server's `message` prefixed by the verb and path, never the token.
//
// Thread-safe: each call uses its own curl handle; connections are shared through one curl share
// object, so consecutive calls reuse keep-alive connections.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::kube {

// How to reach one API server and who to be there.
struct ClusterConfig {
  std::string server;  // "https://10.0.0.1:6443" or "http://127.0.0.1:8001"
  // Authentication: a bearer token, or a file holding one (re-read on every request, as service
  // account tokens are rotated), and/or a client certificate and key (PEM, as files or bytes).
  std::string token;
  std::string token_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_data;
  std::string client_key_data;
  // Server verification: a CA bundle (PEM file or bytes); neither = the system's CAs.
  std::string ca_file;
  std::string ca_data;
  bool insecure_skip_tls_verify = false;
  std::string namespace_ = "default";  // the default namespace (kubeconfig context's namespace)
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  // per request, not for watches
};

// Reads a kubeconfig (YAML): the `context` named, or its current-context when empty. Supports
// token, tokenFile, client-certificate(-data), client-key(-data), certificate-authority(-data),
// insecure-skip-tls-verify and the context's namespace; relative file paths are relative to the
// kubeconfig's directory. exec and auth-provider plugins are UNIMPLEMENTED (naming the user).
// INVALID_ARGUMENT naming what is missing or malformed; NOT_FOUND if the file does not exist.
absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             const std::string& context = "");
// The same from the kubeconfig's text (e.g. a platform credential's secret): relative file paths
// are relative to `dir` (none when empty); `origin` names it in messages.
absl::StatusOr<ClusterConfig> ParseKubeconfig(const std::string& text, const std::string& context,
                                              const std::string& dir, const std::string& origin);

// The configuration of a process running in a pod: KUBERNETES_SERVICE_HOST/PORT and the
// service account's token, CA and namespace under `account_dir`.
absl::StatusOr<ClusterConfig> InClusterConfig(
    const std::string& account_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// True for the API server's 410 Gone (an expired resourceVersion or continue token), whether it
// came as an HTTP status or as an ERROR event inside a watch stream.
bool IsExpired(const absl::Status& status);

// The absl status for an API server answer: OK for 2xx, otherwise from its Status object (see
// the table above). `what` ("GET /api/v1/...") prefixes the message.
absl::Status StatusFromAnswer(long http_status, const std::string& body, const std::string& what);

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  nlohmann::json object;
};

// A LIST's items and the collection's resourceVersion (to watch from).
struct ListResult {
  std::vector<nlohmann::json> items;
  std::string resource_version;
};

class Client {
 public:
  // INVALID_ARGUMENT when `config.server` is not an http(s) URL.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClusterConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClusterConfig& config() const { return config_; }

  // `path` is an API path such as "/apis/batch/v1/namespaces/ns/jobs/name".
  absl::StatusOr<nlohmann::json> Get(const std::string& path);
  // POSTs `object` to a collection; returns the stored object.
  absl::StatusOr<nlohmann::json> Create(const std::string& collection_path,
                                        const nlohmann::json& object);
  // application/merge-patch+json.
  absl::StatusOr<nlohmann::json> MergePatch(const std::string& path, const nlohmann::json& patch);
  // DELETE with DeleteOptions {propagationPolicy, gracePeriodSeconds}. NOT_FOUND if absent.
  absl::Status Delete(const std::string& path, const std::string& propagation_policy = "Background",
                      std::optional<int64_t> grace_period_seconds = std::nullopt);
  // Every item of a collection, following `continue` tokens `page_size` at a time. A token that
  // expires mid-way is IsExpired (start again).
  absl::StatusOr<ListResult> List(const std::string& collection_path,
                                  const std::string& label_selector = "", int page_size = 500);
  // A GET whose answer is text (pod logs): the body as it came. `on_started`, when given, is
  // called once the answer's headers are in, before its body is read (a log follower then knows
  // it is connected); `timeout`, when given, replaces the client's (a followed log lasts).
  absl::StatusOr<std::string> GetText(
      const std::string& path_and_query, const std::function<void()>& on_started = nullptr,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // API discovery: whether the server serves `group_version` ("batch/v1", "trainer.kubeflow.org/
  // v1alpha1") and its resource `plural`. NOT_FOUND answers are false; other errors are errors.
  absl::StatusOr<bool> Serves(const std::string& group_version, const std::string& plural);

  // Watches a collection from `resource_version` with bookmarks, calling `on_event` for each
  // ADDED/MODIFIED/DELETED/BOOKMARK event until the server ends the stream (OK), `on_event`
  // returns false or `cancel` becomes true (OK, promptly), or an error: IsExpired for a 410
  // (either form), UNAVAILABLE when the connection breaks. `timeout_seconds` is asked of the
  // server so that streams end and are renewed.
  absl::Status Watch(const std::string& collection_path, const std::string& label_selector,
                     const std::string& resource_version, int timeout_seconds,
                     const std::function<bool(const WatchEvent&)>& on_event,
                     const std::atomic<bool>* cancel);

  // Requests answered, for tests and benchmarks.
  int64_t requests() const { return requests_.load(); }

 private:
  struct Shared;
  explicit Client(ClusterConfig config);
  // One request; `body` empty = none. Returns the HTTP status and fills `answer`.
  absl::StatusOr<long> Send(const std::string& method, const std::string& path_and_query,
                            const std::string& body, const std::string& content_type,
                            std::string* answer, const std::function<void()>& on_started = nullptr,
                            std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  ClusterConfig config_;
  std::unique_ptr<Shared> shared_;
  std::atomic<int64_t> requests_{0};
};

// Percent-encodes a query parameter value.
std::string QueryEscape(const std::string& value);

}  // namespace submarine::kube
