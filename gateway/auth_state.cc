#include "gateway/auth_state.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "common/events/event_options.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::gateway {
namespace {

using submarine::common::v1::Principal;
namespace perm = submarine::permission::v1;

constexpr char kPermissionTopicPrefix[] = "submarine.permission.v1.";
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
constexpr size_t kEd25519PublicKeyBytes = 32;

absl::Status Unauthenticated(const std::string& reason, const std::string& message) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason, message);
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// The token of "Bearer <token>" (scheme case-insensitive, RFC 7235), or an error that says what
// is wrong without repeating what the client sent.
absl::StatusOr<std::string_view> BearerToken(std::string_view header) {
  while (!header.empty() && IsSpace(header.front())) header.remove_prefix(1);
  while (!header.empty() && IsSpace(header.back())) header.remove_suffix(1);
  if (header.empty()) {
    return Unauthenticated("UNAUTHENTICATED",
                           "this call needs a token: send \"Authorization: Bearer <token>\"");
  }
  constexpr std::string_view kScheme = "bearer";
  bool bearer = header.size() > kScheme.size() && IsSpace(header[kScheme.size()]) &&
                std::equal(kScheme.begin(), kScheme.end(), header.begin(), [](char a, char b) {
                  return a == std::tolower(static_cast<unsigned char>(b));
                });
  if (!bearer) {
    return Unauthenticated("UNAUTHENTICATED",
                           "only bearer tokens are accepted: send \"Authorization: Bearer "
                           "<token>\"");
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && IsSpace(token.front())) token.remove_prefix(1);
  if (token.empty() || std::any_of(token.begin(), token.end(), IsSpace)) {
    return Unauthenticated("TOKEN_MALFORMED", "the token is not a well-formed JWT");
  }
  return token;
}

int64_t UnixSeconds(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

}  // namespace

absl::StatusOr<std::shared_ptr<const AuthSnapshot>> AuthSnapshot::Build(
    const perm::AuthState& state) {
  if (state.issuer().empty()) return InvalidField("issuer", "the auth state names no issuer");
  std::shared_ptr<AuthSnapshot> snapshot(new AuthSnapshot());
  snapshot->issuer_ = state.issuer();
  std::vector<std::pair<std::string, std::string>> keys;
  for (int i = 0; i < state.signing_keys_size(); ++i) {
    const auto& key = state.signing_keys(i);
    if (key.key_id().empty() || key.public_key().size() != kEd25519PublicKeyBytes) {
      return InvalidField(absl::StrCat("signing_keys[", i, "]"),
                          "a signing key needs a key id and a 32-byte Ed25519 public key");
    }
    keys.emplace_back(key.key_id(), key.public_key());
  }
  snapshot->verifier_.SetKeys(std::move(keys));
  for (const auto& revoked : state.revoked_tokens()) snapshot->revoked_.insert(revoked.token_id());
  for (const auto& user : state.blocked_users()) snapshot->blocked_.insert(user);
  for (const auto& [user, ts] : state.not_before()) snapshot->not_before_[user] = UnixSeconds(ts);
  return std::shared_ptr<const AuthSnapshot>(std::move(snapshot));
}

absl::StatusOr<Principal> AuthSnapshot::Authenticate(std::string_view authorization,
                                                     int64_t now_unix) const {
  SUBMARINE_ASSIGN_OR_RETURN(std::string_view token, BearerToken(authorization));
  SUBMARINE_ASSIGN_OR_RETURN(auth::TokenClaims claims, Verify(token, now_unix));
  // Revocation and blocking are checked after the signature so that nothing about the state
  // (which ids are revoked, who is disabled) is revealed to a caller holding no valid token.
  if (revoked_.contains(claims.token_id)) {
    return Unauthenticated("TOKEN_REVOKED", "the token has been revoked; log in again");
  }
  if (blocked_.contains(claims.subject)) {
    return Unauthenticated("USER_DISABLED", "the token's user is disabled");
  }
  if (auto it = not_before_.find(claims.subject);
      it != not_before_.end() && claims.issued_at < it->second) {
    // The user's sessions were invalidated (password reset, admin flag or teams changed) after
    // this token was issued: its claims may no longer be true.
    return Unauthenticated("TOKEN_REVOKED",
                           "the token was issued before the user's sessions were invalidated; "
                           "log in again");
  }
  Principal principal;
  principal.set_kind(Principal::USER);
  principal.set_user(claims.subject);
  for (auto& team : claims.teams) principal.add_teams(std::move(team));
  principal.set_admin(claims.admin);
  principal.set_token_id(claims.token_id);
  principal.set_scope(claims.scope);
  return principal;
}

absl::StatusOr<auth::TokenClaims> AuthSnapshot::Verify(std::string_view token,
                                                       int64_t now_unix) const {
  std::string key(token);
  {
    std::lock_guard lock(cache_mu_);
    auto it = verified_.find(key);
    if (it != verified_.end()) {
      const auth::TokenClaims& c = it->second.claims;
      // Same rule as JwtVerifier; an expired entry falls through so the verifier names the error.
      if (c.expires_at == 0 || now_unix < c.expires_at + kLeewaySeconds) {
        lru_.splice(lru_.begin(), lru_, it->second.position);
        return c;
      }
      lru_.erase(it->second.position);
      verified_.erase(it);
    }
  }
  SUBMARINE_ASSIGN_OR_RETURN(auth::TokenClaims claims,
                             verifier_.Verify(token, issuer_, now_unix, kLeewaySeconds));
  std::lock_guard lock(cache_mu_);
  if (verified_.contains(key)) return claims;  // another thread verified it meanwhile
  if (verified_.size() >= kVerifiedCacheSize) {
    verified_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  verified_.emplace(std::move(key), CachedClaims{claims, lru_.begin()});
  return claims;
}

AuthStateCache::AuthStateCache(Options options) : options_(std::move(options)) {}

AuthStateCache::~AuthStateCache() { Stop(); }

absl::Status AuthStateCache::Start() {
  if (options_.address.empty()) {
    return InvalidField("auth.address", "the gateway needs the permission service's address");
  }
  if (rpc::GetPrincipalCodec() == nullptr) {
    return InvalidField("server.gateway_secret_file",
                        "the gateway needs the internal secret to call the permission service");
  }
  if (thread_.joinable()) return absl::OkStatus();
  grpc::ChannelArguments args;
  // A restarted permission service is reachable again within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  channel_ = rpc::MakeChannel(options_.address, args);
  stub_ = perm::IdentityService::NewStub(channel_);
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    requested_ = true;  // the first fetch, at once
  }
  thread_ = std::thread([this] { Loop(); });
  if (!options_.subscribe_endpoint.empty()) {
    events::ChangeWatcher::Options w;
    w.name = "gateway.auth";
    w.publisher = "permission";
    w.subscribe_endpoint = options_.subscribe_endpoint;
    w.topic_prefix = kPermissionTopicPrefix;
    w.secret = options_.internal_secret;
    w.on_change = [this](const std::string& topic, const submarine::common::v1::EventHeader&,
                         const std::string&) {
      if (events::OptionsOfTopic(topic).affects_tokens()) RequestRefresh();
    };
    w.on_resync = [this] { RequestRefresh(); };
    watcher_ = std::make_unique<events::ChangeWatcher>(std::move(w));
    SUBMARINE_RETURN_IF_ERROR(watcher_->Start());
  }
  return absl::OkStatus();
}

void AuthStateCache::Stop() {
  if (watcher_) watcher_->Stop();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status AuthStateCache::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void AuthStateCache::RequestRefresh() {
  {
    std::lock_guard lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

void AuthStateCache::Loop() {
  auto log = log::Get("gateway");
  auto backoff = kFirstBackoff;
  auto last_success = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (!requested_) {
      // The backstop: a lost event or a silent bus delays freshness by one interval at most.
      cv_.wait_until(lock, last_success + options_.refresh_interval,
                     [this] { return stop_ || requested_; });
      if (stop_) break;
    }
    requested_ = false;  // requests arriving from now on queue exactly one more fetch
    lock.unlock();
    absl::Status fetched = FetchOnce();
    lock.lock();
    if (fetched.ok()) {
      if (!last_error_.ok() && loads_.load() > 1) {
        log->info("the token state is fresh again (from {})", options_.address);
      }
      last_error_ = absl::OkStatus();
      last_success = std::chrono::steady_clock::now();
      backoff = kFirstBackoff;
      continue;
    }
    last_error_ = fetched;
    log->warn("cannot fetch the token state from {}: {} (retrying in {} ms)", options_.address,
              Message(fetched), backoff.count());
    // Retry after a pause that only Stop() interrupts, so events arriving while the permission
    // service is down cannot turn the retries into a busy loop.
    cv_.wait_for(lock, backoff, [this] { return stop_; });
    backoff = std::min(backoff * 2, kMaxBackoff);
    requested_ = true;
  }
}

absl::Status AuthStateCache::FetchOnce() {
  static metrics::Counter* fetches = metrics::Registry::Global().GetCounter(
      "gateway_auth_state_fetches_total", "GetAuthState calls by result", "result=\"ok\"");
  static metrics::Counter* failures = metrics::Registry::Global().GetCounter(
      "gateway_auth_state_fetches_total", "GetAuthState calls by result", "result=\"error\"");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  rpc::ActAs(&ctx, auth::ServicePrincipal("gateway"));
  perm::AuthState state;
  grpc::Status status = stub_->GetAuthState(&ctx, perm::GetAuthStateRequest(), &state);
  if (!status.ok()) {
    failures->Inc();
    return FromGrpcStatus(status);
  }
  auto snapshot = AuthSnapshot::Build(state);
  if (!snapshot.ok()) {
    failures->Inc();
    return snapshot.status();
  }
  current_.store(std::move(snapshot).value());
  fetches->Inc();
  uint64_t n = ++loads_;
  if (n == 1) log::Get("gateway")->info("token state loaded from {}", options_.address);
  log::Get("gateway")->debug("token state #{}: {} key(s), {} revoked, {} blocked user(s)", n,
                             state.signing_keys_size(), state.revoked_tokens_size(),
                             state.blocked_users_size());
  return absl::OkStatus();
}

}  // namespace submarine::gateway
