#include "services/permission/quota_manager.h"

#include <google/protobuf/empty.pb.h>

#include <google/protobuf/util/time_util.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/permission_errors.h"
#include "services/permission/quota_store.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;
using v1::Lease;
using v1::Resources;

constexpr int kReclaimBatch = 500;
constexpr size_t kMaxHolder = 512;

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-z][a-z0-9<extra>]{0,62}
bool IsId(const std::string& id, const char* extra) {
  if (id.empty() || id.size() > 63 || !IsLower(id[0])) return false;
  for (char c : id) {
    if (!IsLower(c) && !IsDigit(c) && std::string_view(extra).find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// A quota owner: "users/{u}" or "teams/{t}".
struct Owner {
  bool team = false;
  std::string id;
};

absl::StatusOr<Owner> ParseOwner(const std::string& name, const std::string& field) {
  if (name.empty())
    return InvalidField(field, "is required (\"users/{user}\" or \"teams/{team}\")");
  Owner o;
  if (name.rfind("users/", 0) == 0) {
    o.id = name.substr(6);
    if (IsId(o.id, "_.-")) return o;
  } else if (name.rfind("teams/", 0) == 0) {
    o.team = true;
    o.id = name.substr(6);
    if (IsId(o.id, "-")) return o;
  }
  return InvalidField(field, absl::StrCat("expected \"users/{user}\" or \"teams/{team}\", got \"",
                                          name.substr(0, 100), "\""));
}

absl::StatusOr<std::string> ParseLeaseName(const std::string& name) {
  if (name.empty()) return InvalidField("name", "is required (\"leases/{lease}\")");
  bool ok = name.rfind("leases/", 0) == 0 && name.size() > 7 && name.size() <= 7 + 64;
  for (size_t i = 7; ok && i < name.size(); ++i) {
    ok = IsLower(name[i]) || IsDigit(name[i]) || name[i] == '-';
  }
  if (!ok) {
    return InvalidField(
        "name", absl::StrCat("expected \"leases/{lease}\", got \"", name.substr(0, 100), "\""));
  }
  return name.substr(7);
}

absl::Status ValidateTtl(int32_t ttl, const std::string& field) {
  if (ttl < QuotaManager::kMinTtlSeconds || ttl > QuotaManager::kMaxTtlSeconds) {
    return InvalidField(field, absl::StrCat("must be between ", QuotaManager::kMinTtlSeconds,
                                            " and ", QuotaManager::kMaxTtlSeconds, " seconds"));
  }
  return absl::OkStatus();
}

// Every set amount must be >= 0; `require_some`: at least one must be positive.
absl::Status ValidateAmounts(const Resources& r, const std::string& prefix, bool require_some) {
  bool some = false;
  for (const auto& f : kResourceFields) {
    if (!(r.*f.has)()) continue;
    if ((r.*f.get)() < 0) {
      return InvalidField(absl::StrCat(prefix, ".", f.name), "must not be negative");
    }
    some = some || (r.*f.get)() > 0;
  }
  if (require_some && !some) return InvalidField(prefix, "must request at least one resource");
  return absl::OkStatus();
}

// Who may use (and see) the quota of `owner`: for "users/u" the user u, for "teams/t" a member
// of t, each directly or through a service acting for them, and platform admins (Caller).
bool MayUse(const Caller& caller, const Owner& owner) {
  if (caller.admin) return true;
  if (owner.team) return caller.TeamRole(owner.id) > 0;
  return caller.is(owner.id);
}

// NOT_FOUND unless the owner exists (checked after authorization).
absl::Status CheckOwnerExists(pqxx::transaction_base& tx, const Owner& owner,
                              const std::string& name) {
  bool exists = owner.team ? QuotaStore::TeamExists(tx, owner.id)
                           : QuotaStore::FindAccount(tx, owner.id).has_value();
  if (!exists) return NotFound(owner.team ? "team" : "user", name);
  return absl::OkStatus();
}

}  // namespace

QuotaManager::QuotaManager(db::ConnectionPool* pool, const api::Idempotency* idempotency,
                           const submarine::config::v1::PermissionServiceConfig& config,
                           const Clock& clock, IdGenerator& ids)
    : pool_(pool),
      idempotency_(idempotency),
      default_user_quota_(config.default_user_quota()),
      default_team_quota_(config.default_team_quota()),
      clock_(clock),
      ids_(ids) {}

int64_t QuotaManager::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
      .count();
}

Resources QuotaManager::EffectiveLimits(const std::string& owner,
                                        const Resources& explicit_limits) const {
  const Resources& defaults =
      owner.rfind("teams/", 0) == 0 ? default_team_quota_ : default_user_quota_;
  Resources out;
  for (const auto& f : kResourceFields) {
    if ((explicit_limits.*f.has)()) {
      (out.*f.set)((explicit_limits.*f.get)());
    } else if ((defaults.*f.has)()) {
      (out.*f.set)((defaults.*f.get)());
    }
  }
  return out;
}

absl::StatusOr<v1::Usage> QuotaManager::SetQuota(const v1::SetQuotaRequest& req,
                                                 const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(Owner owner, ParseOwner(req.owner(), "owner"));
  SUBMARINE_RETURN_IF_ERROR(ValidateAmounts(req.limits(), "limits", false));
  int64_t now = NowMicros();
  v1::Usage usage;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "SetQuota", req, req.request_id(), &usage,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!caller.admin) return CallerMayNot(call, "set quotas (admins only)", req.owner());
    SUBMARINE_RETURN_IF_ERROR(CheckOwnerExists(tx, owner, req.owner()));
    QuotaStore::UpsertQuota(tx, req.owner(), req.limits(), now);
    QuotaStore::Usage used = QuotaStore::SumActive(tx, req.owner(), now);
    usage.set_owner(req.owner());
    *usage.mutable_limits() = EffectiveLimits(req.owner(), req.limits());
    *usage.mutable_used() = used.used;
    usage.set_active_leases(used.active);
    v1::QuotaChanged event;
    event.set_owner(req.owner());
    *event.mutable_limits() = req.limits();
    return events::AppendToOutbox(tx, event, req.owner(), call.request_id, call.subject);
  }));
  return usage;
}

absl::StatusOr<v1::Usage> QuotaManager::GetUsage(const v1::GetUsageRequest& req,
                                                 const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(Owner owner, ParseOwner(req.owner(), "owner"));
  int64_t now = NowMicros();
  v1::Usage usage;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!MayUse(caller, owner)) return CallerMayNot(call, "see this quota", req.owner());
    SUBMARINE_RETURN_IF_ERROR(CheckOwnerExists(tx, owner, req.owner()));
    auto explicit_limits = QuotaStore::FindQuota(tx, req.owner());
    QuotaStore::Usage used = QuotaStore::SumActive(tx, req.owner(), now);
    usage.set_owner(req.owner());
    *usage.mutable_limits() = EffectiveLimits(req.owner(), explicit_limits.value_or(Resources()));
    *usage.mutable_used() = used.used;
    usage.set_active_leases(used.active);
    return absl::OkStatus();
  }));
  return usage;
}

absl::StatusOr<Lease> QuotaManager::AcquireLease(const v1::AcquireLeaseRequest& req,
                                                 const rpc::CallInfo& call) {
  const Lease& in = req.lease();
  SUBMARINE_ASSIGN_OR_RETURN(Owner owner, ParseOwner(in.owner(), "lease.owner"));
  if (in.project().empty())
    return InvalidField("lease.project", "is required (\"projects/{project}\")");
  std::string project_id =
      in.project().rfind("projects/", 0) == 0 ? in.project().substr(9) : std::string();
  if (!IsId(project_id, "-")) {
    return InvalidField("lease.project", absl::StrCat("expected \"projects/{project}\", got \"",
                                                      in.project().substr(0, 100), "\""));
  }
  SUBMARINE_RETURN_IF_ERROR(ValidateAmounts(in.resources(), "lease.resources", true));
  if (in.holder().size() > kMaxHolder) {
    return InvalidField("lease.holder", absl::StrCat("longer than ", kMaxHolder, " characters"));
  }
  for (unsigned char c : in.holder()) {
    if (c < 0x20 || c == 0x7f) return InvalidField("lease.holder", "contains control characters");
  }
  int32_t ttl = req.ttl_seconds() == 0 ? kDefaultTtlSeconds : req.ttl_seconds();
  SUBMARINE_RETURN_IF_ERROR(ValidateTtl(ttl, "ttl_seconds"));

  Lease out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "AcquireLease", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (!MayUse(caller, owner)) return CallerMayNot(call, "use this quota", in.owner());
    SUBMARINE_RETURN_IF_ERROR(CheckOwnerExists(tx, owner, in.owner()));
    if (!QuotaStore::ProjectExists(tx, project_id)) {
      return MakeError(absl::StatusCode::kNotFound, "PROJECT_NOT_FOUND",
                       absl::StrCat("project \"", in.project(), "\" not found"),
                       {{"resource", in.project()}, {"field", "lease.project"}});
    }
    // Serializes every acquisition for this owner until commit; the sum below then sees every
    // lease committed before us and none can slip in between.
    Resources limits = EffectiveLimits(in.owner(), QuotaStore::LockQuota(tx, in.owner()));
    // Now after the lock: time spent waiting for it must not count lapsed leases as active.
    int64_t now = NowMicros();
    QuotaStore::Usage used = QuotaStore::SumActive(tx, in.owner(), now);
    std::vector<std::string> missing;
    std::vector<std::string> details;
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const auto& f : kResourceFields) {
      int64_t want = (in.resources().*f.get)();
      if (want <= 0 || !(limits.*f.has)()) continue;
      int64_t have = (used.used.*f.get)();
      int64_t limit = (limits.*f.get)();
      if (have + want <= limit) continue;
      missing.push_back(f.name);
      details.push_back(
          absl::StrCat(f.name, " requested ", want, ", used ", have, ", limit ", limit));
      metadata.emplace_back(absl::StrCat(f.camel_name, "Requested"), absl::StrCat(want));
      metadata.emplace_back(absl::StrCat(f.camel_name, "Used"), absl::StrCat(have));
      metadata.emplace_back(absl::StrCat(f.camel_name, "Limit"), absl::StrCat(limit));
    }
    if (!missing.empty()) {
      metadata.emplace_back("resources", absl::StrJoin(missing, ","));
      return WithMetadata(MakeError(absl::StatusCode::kResourceExhausted, "QUOTA_EXCEEDED",
                                    absl::StrCat("quota of ", in.owner(),
                                                 " exceeded: ", absl::StrJoin(details, "; ")),
                                    {{"owner", in.owner()}}),
                          metadata);
    }
    out.set_name(absl::StrCat("leases/", ids_.Uuid()));
    out.set_owner(in.owner());
    out.set_project(in.project());
    for (const auto& f : kResourceFields) {
      if ((in.resources().*f.get)() > 0) {
        (out.mutable_resources()->*f.set)((in.resources().*f.get)());
      }
    }
    out.set_holder(in.holder());
    *out.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(now);
    *out.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(now + int64_t{ttl} * 1000000);
    QuotaStore::InsertLease(tx, out, ttl);
    v1::LeaseChanged event;
    *event.mutable_lease() = out;
    event.set_change(v1::CREATED);
    return events::AppendToOutbox(tx, event, out.name(), call.request_id, call.subject);
  }));
  return out;
}

absl::StatusOr<Lease> QuotaManager::HeartbeatLease(const v1::HeartbeatLeaseRequest& req,
                                                   const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string id, ParseLeaseName(req.name()));
  if (req.ttl_seconds() != 0)
    SUBMARINE_RETURN_IF_ERROR(ValidateTtl(req.ttl_seconds(), "ttl_seconds"));
  Lease out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "HeartbeatLease", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    auto found = QuotaStore::FindLease(tx, id, /*for_update=*/true);
    if (!found) return NotFound("lease", req.name());
    SUBMARINE_ASSIGN_OR_RETURN(Owner owner, ParseOwner(found->lease.owner(), "name"));
    if (!MayUse(caller, owner)) return CallerMayNot(call, "heartbeat this lease", req.name());
    int64_t now = NowMicros();
    if (TimeUtil::TimestampToMicroseconds(found->lease.expire_time()) <= now) {
      // Its resources may already be held by someone else: a lapsed lease never comes back.
      return MakeError(absl::StatusCode::kFailedPrecondition, "LEASE_EXPIRED",
                       absl::StrCat("lease \"", req.name(),
                                    "\" expired; its resources were given back: acquire a new "
                                    "lease"),
                       {{"resource", req.name()}});
    }
    int32_t ttl = req.ttl_seconds() != 0 ? req.ttl_seconds() : found->ttl_seconds;
    int64_t expire = now + int64_t{ttl} * 1000000;
    QuotaStore::SetLeaseExpiry(tx, id, expire, ttl);
    out = found->lease;
    *out.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(expire);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status QuotaManager::ReleaseLease(const v1::ReleaseLeaseRequest& req,
                                        const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string id, ParseLeaseName(req.name()));
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "ReleaseLease", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    auto found = QuotaStore::FindLease(tx, id, /*for_update=*/true);
    if (!found) return NotFound("lease", req.name());
    SUBMARINE_ASSIGN_OR_RETURN(Owner owner, ParseOwner(found->lease.owner(), "name"));
    if (!MayUse(caller, owner)) return CallerMayNot(call, "release this lease", req.name());
    QuotaStore::DeleteLease(tx, id);
    v1::LeaseChanged event;
    *event.mutable_lease() = found->lease;
    event.set_change(v1::DELETED);
    return events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject);
  });
}

absl::StatusOr<v1::ListLeasesResponse> QuotaManager::ListLeases(const v1::ListLeasesRequest& req,
                                                                const rpc::CallInfo& call) {
  Owner owner;
  if (!req.owner().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(owner, ParseOwner(req.owner(), "owner"));
  }
  int64_t now = NowMicros();
  v1::ListLeasesResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    std::vector<Lease> leases;
    if (!req.owner().empty()) {
      if (!MayUse(caller, owner)) return CallerMayNot(call, "see these leases", req.owner());
      SUBMARINE_RETURN_IF_ERROR(CheckOwnerExists(tx, owner, req.owner()));
      leases = QuotaStore::ListActive(tx, req.owner(), "", now);
    } else if (caller.admin) {
      leases = QuotaStore::ListActive(tx, "", "", now);
    } else {
      leases = QuotaStore::ListActive(tx, "", caller.username, now);
    }
    for (auto& l : leases) *resp.add_leases() = std::move(l);
    return absl::OkStatus();
  }));
  return resp;
}

absl::StatusOr<int64_t> QuotaManager::ReclaimExpired() {
  int64_t total = 0;
  for (;;) {
    int64_t now = NowMicros();
    size_t batch = 0;
    SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
      auto expired = QuotaStore::DeleteExpired(tx, now, kReclaimBatch);
      batch = expired.size();
      for (const auto& lease : expired) {
        v1::LeaseChanged event;
        *event.mutable_lease() = lease;
        event.set_change(v1::DELETED);
        // A system action: no request, no principal.
        SUBMARINE_RETURN_IF_ERROR(events::AppendToOutbox(tx, event, lease.name(), "", ""));
      }
      return absl::OkStatus();
    }));
    total += static_cast<int64_t>(batch);
    if (batch < static_cast<size_t>(kReclaimBatch)) return total;
  }
}

}  // namespace submarine::permission
