#pragma once
// What the gateway needs to authenticate a request without calling anyone: the permission
// service's token state (signing keys, issuer, revoked token ids, blocked users, per-user
// not-before times), fetched with IdentityService.GetAuthState and swapped atomically.
//
// AuthSnapshot is one immutable copy of that state and does the per-request check.
// AuthStateCache keeps the current snapshot fresh: it fetches at start, again whenever a
// submarine.permission.v1 event that can change token state arrives or the bus watcher signals
// a resync (events::ChangeWatcher), and every refresh_interval as a backstop. Fetches run on the
// cache's own thread and are coalesced (one in flight, at most one queued), so a burst of events
// costs at most two fetches and request threads never wait for one.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/crypto.h"
#include "common/auth/principal.h"
#include "common/events/change_watcher.h"
#include "common/rpc/server_runner.h"
#include "submarine/common/v1/principal.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::gateway {

// One immutable copy of the permission service's token state. Thread-safe (const after Build).
class AuthSnapshot {
 public:
  // INVALID_ARGUMENT (naming the field) if the issuer is empty or a key is not 32 bytes.
  static absl::StatusOr<std::shared_ptr<const AuthSnapshot>> Build(
      const submarine::permission::v1::AuthState& state);

  // Checks the value of an `Authorization` header (REST) or `authorization` metadata (gRPC):
  // "Bearer <jwt>", signature (EdDSA only) under one of the state's keys, issuer, expiry (with
  // 30 s leeway), then the token id against the revocations, the user against the blocked users
  // and the issue time against the user's not-before time. On success the verified caller,
  // Principal{USER, user = sub, teams, admin, token_id = jti}. Every failure is UNAUTHENTICATED
  // with an ErrorInfo reason: UNAUTHENTICATED (no or non-Bearer credentials), TOKEN_MALFORMED,
  // TOKEN_UNKNOWN_KEY, TOKEN_BAD_SIGNATURE, TOKEN_WRONG_ISSUER, TOKEN_EXPIRED,
  // TOKEN_NOT_YET_VALID, TOKEN_REVOKED (revoked, or issued before the user's not-before time)
  // or USER_DISABLED. Messages never contain the token. Successfully verified tokens are remembered
  // (a small LRU of kVerifiedCacheSize tokens, kept by this snapshot only, so a new state starts
  // empty): a repeated token skips the signature check and JSON parsing (measured by bench-gateway:
  // about 100 us per token on the 2-core VM), while expiry, revocation, blocking and not-before
  // are still checked on every call.
  absl::StatusOr<submarine::common::v1::Principal> Authenticate(std::string_view authorization,
                                                                int64_t now_unix) const;

  static constexpr size_t kVerifiedCacheSize = 4096;
  static constexpr int64_t kLeewaySeconds = 30;

  const std::string& issuer() const { return issuer_; }
  size_t revoked_count() const { return revoked_.size(); }

 private:
  AuthSnapshot() = default;
  // The verifier's answer for `token`, from the cache when it was verified before and has not
  // expired since.
  absl::StatusOr<auth::TokenClaims> Verify(std::string_view token, int64_t now_unix) const;

  auth::JwtVerifier verifier_;
  std::string issuer_;
  std::unordered_set<std::string> revoked_;              // jti
  std::unordered_set<std::string> blocked_;              // usernames
  std::unordered_map<std::string, int64_t> not_before_;  // username -> Unix seconds

  // Verified tokens, most recently used first. The key is the whole token, so a hit is an exact
  // match of what was verified.
  mutable std::mutex cache_mu_;
  mutable std::list<std::string> lru_;
  struct CachedClaims {
    auth::TokenClaims claims;
    std::list<std::string>::iterator position;
  };
  mutable std::unordered_map<std::string, CachedClaims> verified_;
};

// Keeps the current AuthSnapshot. A BackgroundTask: Start() launches the refresher thread (and
// the event watcher when a subscribe endpoint is configured); Stop() joins them.
class AuthStateCache : public rpc::BackgroundTask {
 public:
  struct Options {
    std::string address;             // the permission service (gRPC)
    std::string subscribe_endpoint;  // the bus' XPUB endpoint; empty: backstop refreshes only
    std::chrono::milliseconds refresh_interval{30000};
    std::chrono::milliseconds timeout{2000};  // deadline of each GetAuthState call
    // The internal secret the watcher verifies the permission service's events with; required
    // with subscribe_endpoint.
    std::string internal_secret;
  };

  explicit AuthStateCache(Options options);
  ~AuthStateCache() override;  // Stop()s
  AuthStateCache(const AuthStateCache&) = delete;
  AuthStateCache& operator=(const AuthStateCache&) = delete;

  std::string TaskName() const override { return "auth-state"; }
  // Starts the refresher (first fetch at once) and the watcher. INVALID_ARGUMENT if the address
  // is missing or the process has no principal codec (rpc::SetPrincipalCodec) to sign its
  // GetAuthState calls (an internal-only method) with.
  absl::Status Start() override;
  void Stop() override;

  // The current snapshot; nullptr until the first fetch succeeded. Lock-free for readers apart
  // from the shared_ptr copy; safe from any thread.
  std::shared_ptr<const AuthSnapshot> Current() const { return current_.load(); }
  // Why the state is not loaded (or the last fetch failed); OK after a successful fetch.
  absl::Status last_error() const;
  // Asks for a fetch soon; never blocks on it. Requests made while a fetch runs are merged into
  // one more fetch after it.
  void RequestRefresh();
  // Successful fetches so far (for tests and metrics).
  uint64_t loads() const { return loads_.load(); }

 private:
  void Loop();
  absl::Status FetchOnce();

  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<submarine::permission::v1::IdentityService::Stub> stub_;
  std::unique_ptr<events::ChangeWatcher> watcher_;
  std::atomic<std::shared_ptr<const AuthSnapshot>> current_;
  std::atomic<uint64_t> loads_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool requested_ = false;
  absl::Status last_error_ = absl::UnavailableError("the token state has not been loaded yet");
  std::thread thread_;
};

}  // namespace submarine::gateway
