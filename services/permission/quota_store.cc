#include "services/permission/quota_store.h"

#include <google/protobuf/util/time_util.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;
using v1::Lease;
using v1::Resources;

constexpr char kFindAccount[] = "quota_find_account";
constexpr char kTeamExists[] = "quota_team_exists";
constexpr char kIsTeamMember[] = "quota_is_team_member";
constexpr char kProjectExists[] = "quota_project_exists";
constexpr char kFindQuota[] = "quota_find";
constexpr char kUpsertQuota[] = "quota_upsert";
constexpr char kEnsureQuota[] = "quota_ensure";
constexpr char kLockQuota[] = "quota_lock";
constexpr char kSumActive[] = "quota_sum_active";
constexpr char kInsertLease[] = "lease_insert";
constexpr char kFindLease[] = "lease_find";
constexpr char kFindLeaseForUpdate[] = "lease_find_for_update";
constexpr char kSetLeaseExpiry[] = "lease_set_expiry";
constexpr char kDeleteLease[] = "lease_delete";
constexpr char kListActiveAll[] = "lease_list_active_all";
constexpr char kListActiveOwner[] = "lease_list_active_owner";
constexpr char kListActiveVisible[] = "lease_list_active_visible";
constexpr char kDeleteExpired[] = "lease_delete_expired";

// Microseconds since the epoch <-> TIMESTAMPTZ, exactly (EXTRACT returns numeric).
#define SUBMARINE_TS(n) "(TIMESTAMPTZ 'epoch' + $" #n "::bigint * INTERVAL '1 microsecond')"
#define SUBMARINE_MICROS(col) "(EXTRACT(EPOCH FROM " col ") * 1000000)::bigint"

constexpr char kFindAccountSql[] = "SELECT disabled, admin FROM users WHERE username = $1";
constexpr char kTeamExistsSql[] = "SELECT 1 FROM teams WHERE team_id = $1";
constexpr char kIsTeamMemberSql[] =
    "SELECT 1 FROM team_members WHERE team_id = $1 AND username = $2";
constexpr char kProjectExistsSql[] = "SELECT 1 FROM projects WHERE project_id = $1";

constexpr char kFindQuotaSql[] =
    "SELECT cpu_millis, memory_mib, gpus, experiments, notebooks, serving_replicas "
    "FROM quotas WHERE owner = $1";
constexpr char kUpsertQuotaSql[] =
    "INSERT INTO quotas (owner, cpu_millis, memory_mib, gpus, experiments, notebooks, "
    "serving_replicas, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, " SUBMARINE_TS(8) ") "
    "ON CONFLICT (owner) DO UPDATE SET cpu_millis = $2, memory_mib = $3, gpus = $4, "
    "experiments = $5, notebooks = $6, serving_replicas = $7, update_time = " SUBMARINE_TS(8);
constexpr char kEnsureQuotaSql[] =
    "INSERT INTO quotas (owner) VALUES ($1) ON CONFLICT (owner) DO NOTHING";
constexpr char kLockQuotaSql[] =
    "SELECT cpu_millis, memory_mib, gpus, experiments, notebooks, serving_replicas "
    "FROM quotas WHERE owner = $1 FOR UPDATE";
constexpr char kSumActiveSql[] =
    "SELECT COALESCE(SUM(cpu_millis), 0), COALESCE(SUM(memory_mib), 0), COALESCE(SUM(gpus), 0), "
    "COALESCE(SUM(experiments), 0), COALESCE(SUM(notebooks), 0), "
    "COALESCE(SUM(serving_replicas), 0), COUNT(*) "
    "FROM leases WHERE owner = $1 AND expire_time > " SUBMARINE_TS(2);

constexpr char kInsertLeaseSql[] =
    "INSERT INTO leases (lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, "
    "experiments, notebooks, serving_replicas, ttl_seconds, create_time, expire_time) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, " SUBMARINE_TS(12) ", " SUBMARINE_TS(13) ")";
// Column order of every lease read (LeaseFromRow).
#define SUBMARINE_LEASE_COLUMNS                                                              \
  "lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, notebooks, " \
  "serving_replicas, ttl_seconds, " SUBMARINE_MICROS("create_time") ", " SUBMARINE_MICROS(   \
      "expire_time")
constexpr char kFindLeaseSql[] =
    "SELECT " SUBMARINE_LEASE_COLUMNS " FROM leases WHERE lease_id = $1";
constexpr char kSetLeaseExpirySql[] =
    "UPDATE leases SET expire_time = " SUBMARINE_TS(2) ", ttl_seconds = $3 WHERE lease_id = $1";
constexpr char kDeleteLeaseSql[] = "DELETE FROM leases WHERE lease_id = $1";
constexpr char kListActiveAllSql[] =
    "SELECT " SUBMARINE_LEASE_COLUMNS
    " FROM leases WHERE expire_time > " SUBMARINE_TS(1) " ORDER BY create_time, lease_id";
constexpr char kListActiveOwnerSql[] =
    "SELECT " SUBMARINE_LEASE_COLUMNS
    " FROM leases WHERE owner = $1 AND expire_time > " SUBMARINE_TS(
        2) " ORDER BY create_time, lease_id";
// The user's own leases and those of every team they belong to, in one query.
constexpr char kListActiveVisibleSql[] =
    "SELECT " SUBMARINE_LEASE_COLUMNS " FROM leases WHERE expire_time > " SUBMARINE_TS(2)
    " AND (owner = 'users/' || $1 OR owner IN "
    "(SELECT 'teams/' || team_id FROM team_members WHERE username = $1)) "
    "ORDER BY create_time, lease_id";
// SKIP LOCKED: a lease being heart-beaten or released right now is left for the next round.
constexpr char kDeleteExpiredSql[] =
    "DELETE FROM leases WHERE lease_id IN (SELECT lease_id FROM leases WHERE expire_time <= "
    SUBMARINE_TS(1) " ORDER BY expire_time LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING " SUBMARINE_LEASE_COLUMNS;

google::protobuf::Timestamp FromMicros(int64_t micros) {
  return TimeUtil::MicrosecondsToTimestamp(micros);
}

// Reads the six resource columns starting at `first`; NULL columns stay unset.
Resources ResourcesFromRow(const pqxx::row& row, int first) {
  Resources r;
  for (size_t i = 0; i < std::size(kResourceFields); ++i) {
    const auto& field = row[first + static_cast<int>(i)];
    if (!field.is_null()) (r.*kResourceFields[i].set)(field.as<int64_t>());
  }
  return r;
}

QuotaStore::StoredLease LeaseFromRow(const pqxx::row& row) {
  QuotaStore::StoredLease s;
  Lease& l = s.lease;
  l.set_name(absl::StrCat("leases/", row[0].as<std::string>()));
  l.set_owner(row[1].as<std::string>());
  l.set_project(row[2].as<std::string>());
  l.set_holder(row[3].as<std::string>());
  // Zero amounts are reported as absent: the lease does not hold that resource.
  Resources held = ResourcesFromRow(row, 4);
  for (const auto& f : kResourceFields) {
    if ((held.*f.get)() != 0) (l.mutable_resources()->*f.set)((held.*f.get)());
  }
  s.ttl_seconds = row[10].as<int32_t>();
  *l.mutable_create_time() = FromMicros(row[11].as<int64_t>());
  *l.mutable_expire_time() = FromMicros(row[12].as<int64_t>());
  return s;
}

std::string LeaseId(const Lease& lease) {
  const std::string& name = lease.name();
  return name.substr(name.find('/') + 1);
}

}  // namespace

void QuotaStore::Prepare(pqxx::connection& conn) {
  conn.prepare(kFindAccount, kFindAccountSql);
  conn.prepare(kTeamExists, kTeamExistsSql);
  conn.prepare(kIsTeamMember, kIsTeamMemberSql);
  conn.prepare(kProjectExists, kProjectExistsSql);
  conn.prepare(kFindQuota, kFindQuotaSql);
  conn.prepare(kUpsertQuota, kUpsertQuotaSql);
  conn.prepare(kEnsureQuota, kEnsureQuotaSql);
  conn.prepare(kLockQuota, kLockQuotaSql);
  conn.prepare(kSumActive, kSumActiveSql);
  conn.prepare(kInsertLease, kInsertLeaseSql);
  conn.prepare(kFindLease, kFindLeaseSql);
  conn.prepare(kFindLeaseForUpdate, std::string(kFindLeaseSql) + " FOR UPDATE");
  conn.prepare(kSetLeaseExpiry, kSetLeaseExpirySql);
  conn.prepare(kDeleteLease, kDeleteLeaseSql);
  conn.prepare(kListActiveAll, kListActiveAllSql);
  conn.prepare(kListActiveOwner, kListActiveOwnerSql);
  conn.prepare(kListActiveVisible, kListActiveVisibleSql);
  conn.prepare(kDeleteExpired, kDeleteExpiredSql);
}

std::optional<QuotaStore::Account> QuotaStore::FindAccount(pqxx::transaction_base& tx,
                                                           const std::string& username) {
  auto r = tx.exec_prepared(kFindAccount, username);
  if (r.empty()) return std::nullopt;
  return Account{r[0][0].as<bool>(), r[0][1].as<bool>()};
}

bool QuotaStore::TeamExists(pqxx::transaction_base& tx, const std::string& team_id) {
  return !tx.exec_prepared(kTeamExists, team_id).empty();
}

bool QuotaStore::IsTeamMember(pqxx::transaction_base& tx, const std::string& team_id,
                              const std::string& username) {
  return !tx.exec_prepared(kIsTeamMember, team_id, username).empty();
}

bool QuotaStore::ProjectExists(pqxx::transaction_base& tx, const std::string& project_id) {
  return !tx.exec_prepared(kProjectExists, project_id).empty();
}

std::optional<Resources> QuotaStore::FindQuota(pqxx::transaction_base& tx,
                                               const std::string& owner) {
  auto r = tx.exec_prepared(kFindQuota, owner);
  if (r.empty()) return std::nullopt;
  return ResourcesFromRow(r[0], 0);
}

void QuotaStore::UpsertQuota(pqxx::work& tx, const std::string& owner, const Resources& limits,
                             int64_t now_micros) {
  // NULL (a null pointer) for an unset limit: it follows the default.
  std::array<std::string, std::size(kResourceFields)> text;
  std::vector<const char*> values;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& f = kResourceFields[i];
    if ((limits.*f.has)()) {
      text[i] = absl::StrCat((limits.*f.get)());
      values.push_back(text[i].c_str());
    } else {
      values.push_back(nullptr);
    }
  }
  tx.exec_prepared(kUpsertQuota, owner, pqxx::prepare::make_dynamic_params(values), now_micros);
}

Resources QuotaStore::LockQuota(pqxx::work& tx, const std::string& owner) {
  tx.exec_prepared(kEnsureQuota, owner);
  auto r = tx.exec_prepared(kLockQuota, owner);
  return ResourcesFromRow(r[0], 0);
}

QuotaStore::Usage QuotaStore::SumActive(pqxx::transaction_base& tx, const std::string& owner,
                                        int64_t now_micros) {
  auto r = tx.exec_prepared(kSumActive, owner, now_micros);
  Usage u;
  u.used = ResourcesFromRow(r[0], 0);
  u.active = r[0][6].as<int32_t>();
  return u;
}

void QuotaStore::InsertLease(pqxx::work& tx, const Lease& lease, int32_t ttl_seconds) {
  const Resources& r = lease.resources();
  tx.exec_prepared(kInsertLease, LeaseId(lease), lease.owner(), lease.project(), lease.holder(),
                   r.cpu_millis(), r.memory_mib(), r.gpus(), r.experiments(), r.notebooks(),
                   r.serving_replicas(), ttl_seconds,
                   TimeUtil::TimestampToMicroseconds(lease.create_time()),
                   TimeUtil::TimestampToMicroseconds(lease.expire_time()));
}

std::optional<QuotaStore::StoredLease> QuotaStore::FindLease(pqxx::transaction_base& tx,
                                                             const std::string& lease_id,
                                                             bool for_update) {
  auto r = tx.exec_prepared(for_update ? kFindLeaseForUpdate : kFindLease, lease_id);
  if (r.empty()) return std::nullopt;
  return LeaseFromRow(r[0]);
}

void QuotaStore::SetLeaseExpiry(pqxx::work& tx, const std::string& lease_id, int64_t expire_micros,
                                int32_t ttl_seconds) {
  tx.exec_prepared(kSetLeaseExpiry, lease_id, expire_micros, ttl_seconds);
}

void QuotaStore::DeleteLease(pqxx::work& tx, const std::string& lease_id) {
  tx.exec_prepared(kDeleteLease, lease_id);
}

std::vector<Lease> QuotaStore::ListActive(pqxx::transaction_base& tx, const std::string& owner,
                                          const std::string& visible_to, int64_t now_micros) {
  pqxx::result r;
  if (!owner.empty()) {
    r = tx.exec_prepared(kListActiveOwner, owner, now_micros);
  } else if (!visible_to.empty()) {
    r = tx.exec_prepared(kListActiveVisible, visible_to, now_micros);
  } else {
    r = tx.exec_prepared(kListActiveAll, now_micros);
  }
  std::vector<Lease> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(LeaseFromRow(row).lease);
  return out;
}

std::vector<Lease> QuotaStore::DeleteExpired(pqxx::work& tx, int64_t now_micros, int limit) {
  auto r = tx.exec_prepared(kDeleteExpired, now_micros, limit);
  std::vector<Lease> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(LeaseFromRow(row).lease);
  return out;
}

}  // namespace submarine::permission
