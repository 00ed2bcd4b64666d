#pragma once
// Authorizer: the client every service uses to ask the permission service whether its caller
// may do something (issue 3, "Authorization"). Answers are cached in a bounded LRU with a TTL
// (PermissionClientConfig.cache_size / cache_ttl_ms) and the whole cache is dropped whenever the
// permission service publishes an access-relevant event (or the ChangeWatcher may have missed
// one), so a revoked role or grant stops working within an event's latency and at worst after
// the TTL.
//
// Who is asked about: a USER principal is checked as "users/{user}"; a SERVICE principal acting
// on behalf of a user is checked as that user; a SERVICE principal acting for itself is trusted
// (it proved it holds the internal secret, which could sign any principal anyway). The
// permission service is called as Principal{SERVICE, service_name, user = the caller's user}
// with the process' PrincipalCodec (rpc::GetPrincipalCodec(), installed by the ServerRunner).
//
// Results of Check():
//   OK                  allowed (or insecure_no_authorization);
//   UNAUTHENTICATED     anonymous caller;
//   PERMISSION_DENIED   reason PERMISSION_DENIED, naming resource and permission; identical
//                       whether or not the resource exists;
//   NOT_FOUND           reason PROJECT_NOT_FOUND, only when the project does not exist AND the
//                       caller is a platform admin (everyone else gets PERMISSION_DENIED);
//   UNAVAILABLE         reason PERMISSION_SERVICE_UNAVAILABLE: the permission service could not
//                       answer; the call is refused (fail closed).
//
// Metrics (label service): submarine_authz_cache_hits_total, submarine_authz_cache_misses_total,
// submarine_authz_backend_errors_total, submarine_authz_invalidations_total.
//
// Thread-safe.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/authz/answer_cache.h"
#include "common/events/change_watcher.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/rpc/server_runner.h"
#include "common/util/clock.h"
#include "submarine/common/v1/principal.pb.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::authz {

// The permission service as the authorizer sees it: one question per call, no caching. An
// interface so the cache logic can be tested with a fake.
class PermissionBackend {
 public:
  virtual ~PermissionBackend() = default;
  // `request.subject` is already set to the user being asked about.
  virtual absl::StatusOr<submarine::permission::v1::CheckPermissionResponse> CheckPermission(
      const rpc::CallInfo& call,
      const submarine::permission::v1::CheckPermissionRequest& request) = 0;
  virtual absl::StatusOr<submarine::permission::v1::ListAccessibleResponse> ListAccessible(
      const rpc::CallInfo& call,
      const submarine::permission::v1::ListAccessibleRequest& request) = 0;
};

// The real backend: AccessService over gRPC, called as Principal{SERVICE, service_name, user}.
// Each call's deadline is the earlier of the caller's and now + timeout.
std::unique_ptr<PermissionBackend> MakeGrpcPermissionBackend(const std::string& address,
                                                             const std::string& service_name,
                                                             std::chrono::milliseconds timeout);

class Authorizer {
 public:
  struct Options {
    std::string service_name;  // this service, e.g. "environment" (metrics, SERVICE principal)
    bool insecure = false;     // insecure_no_authorization: every check passes
    std::chrono::milliseconds cache_ttl{30000};
    size_t cache_size = 100000;
    std::string subscribe_endpoint;  // the bus' XPUB endpoint; empty: TTL only
    std::chrono::milliseconds watcher_silence_timeout{5000};
    // The internal secret (server.gateway_secret_file) the watcher verifies the permission
    // service's events with; required with subscribe_endpoint (its task refuses to start).
    std::string internal_secret;
  };

  // From EnvironmentServiceConfig.permission (and the like). insecure_no_authorization → every
  // check passes (a warning is logged); otherwise `address` is required (INVALID_ARGUMENT naming
  // `permission.address`). `internal_secret` as in Options.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Create(
      const submarine::config::v1::PermissionClientConfig& config, std::string service_name,
      std::string internal_secret = "");

  // For tests and embedders: an explicit backend (may be null when insecure) and clock (must
  // outlive the authorizer).
  Authorizer(Options options, std::unique_ptr<PermissionBackend> backend,
             const Clock& clock = Clock::Real());
  ~Authorizer();

  // See the header comment for the results.
  absl::Status Check(const rpc::CallInfo& call, const std::string& resource,
                     submarine::permission::v1::Permission permission);

  // Which resources of `collection` under `parent` ("projects/{p}") the caller has
  // `permission` on: all of them, or the listed full names. UNAUTHENTICATED / UNAVAILABLE as for
  // Check(); a caller without any access gets an empty list, not an error.
  struct Visible {
    bool all = false;
    std::vector<std::string> names;
  };
  absl::StatusOr<Visible> ListAccessible(const rpc::CallInfo& call, const std::string& parent,
                                         const std::string& collection,
                                         submarine::permission::v1::Permission permission);

  // Drops every cached answer (what a permission event or a resync does).
  void InvalidateAll();

  bool insecure() const { return options_.insecure; }
  // The ChangeWatcher (when a subscribe endpoint is configured): register with the runner.
  std::vector<rpc::BackgroundTask*> tasks();

 private:
  struct Answer {
    bool allowed = false;
    bool project_missing = false;
    Visible visible;
  };
  // UNAUTHENTICATED for an anonymous call.
  static absl::Status RequireCaller(const rpc::CallInfo& call);
  // The subject to ask about, or "" for a caller that is trusted outright.
  static std::string SubjectFor(const submarine::common::v1::Principal& principal);
  absl::Status BackendError(const absl::Status& status);

  Options options_;
  std::unique_ptr<PermissionBackend> backend_;
  const Clock& clock_;
  AnswerCache<Answer> cache_;
  std::unique_ptr<events::ChangeWatcher> watcher_;
  metrics::Counter* hits_;
  metrics::Counter* misses_;
  metrics::Counter* errors_;
  metrics::Counter* invalidations_;
};

// OK unless `principal` holds a scoped token (Principal.scope "projects/{p}", e.g. a workload's
// identity) and `resource` lies outside that project — reading a platform resource such as
// "computeClusters/x" is allowed; PERMISSION_DENIED (reason TOKEN_SCOPE) then. Check and
// ListAccessible apply it first.
absl::Status CheckScope(const submarine::common::v1::Principal& principal,
                        const std::string& resource,
                        submarine::permission::v1::Permission permission);

// Whether an event (by topic) can change a cached answer: its message declares affects_access
// (events/event_options.h).
bool InvalidatesAnswers(const std::string& topic);

// The PERMISSION_DENIED status Check() returns (exposed so callers that decide locally say the
// same thing).
absl::Status PermissionDenied(const std::string& resource,
                              submarine::permission::v1::Permission permission);

}  // namespace submarine::authz
