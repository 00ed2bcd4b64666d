#include "services/permission/quota_store.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace submarine::permission {
namespace {

using v1::Lease;
using v1::Resources;

constexpr db::Statement kFindAccount{"quota.find_account",
                                     "SELECT disabled, admin FROM users WHERE username = $1"};
constexpr db::Statement kTeamExists{"quota.team_exists", "SELECT 1 FROM teams WHERE team_id = $1"};
constexpr db::Statement kProjectExists{"quota.project_exists",
                                       "SELECT 1 FROM projects WHERE project_id = $1"};

// Every statement lists the resource columns in kResourceFields order.
constexpr db::Statement kFindQuota{
    "quota.find",
    "SELECT cpu_millis, memory_mib, gpus, experiments, notebooks, serving_replicas "
    "FROM quotas WHERE owner = $1"};
constexpr db::Statement kUpsertQuota{
    "quota.upsert",
    "INSERT INTO quotas (owner, cpu_millis, memory_mib, gpus, experiments, notebooks, "
    "serving_replicas, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (owner) DO UPDATE SET cpu_millis = $2, memory_mib = $3, gpus = $4, "
    "experiments = $5, notebooks = $6, serving_replicas = $7, update_time = $8"};
constexpr db::Statement kEnsureQuota{
    "quota.ensure", "INSERT INTO quotas (owner) VALUES ($1) ON CONFLICT (owner) DO NOTHING"};
constexpr db::Statement kLockQuota{
    "quota.lock",
    "SELECT cpu_millis, memory_mib, gpus, experiments, notebooks, serving_replicas "
    "FROM quotas WHERE owner = $1 FOR UPDATE"};
constexpr db::Statement kSumActive{
    "quota.sum_active",
    "SELECT COALESCE(SUM(cpu_millis), 0), COALESCE(SUM(memory_mib), 0), COALESCE(SUM(gpus), 0), "
    "COALESCE(SUM(experiments), 0), COALESCE(SUM(notebooks), 0), "
    "COALESCE(SUM(serving_replicas), 0), COUNT(*) "
    "FROM leases WHERE owner = $1 AND expire_time > $2"};

// Every lease read returns the columns LeaseFromRow expects: lease_id, owner, project, holder,
// the resources, ttl_seconds, create_time, expire_time.
constexpr db::Statement kInsertLease{
    "quota.lease_insert",
    "INSERT INTO leases (lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, "
    "experiments, notebooks, serving_replicas, ttl_seconds, create_time, expire_time) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"};
constexpr db::Statement kFindLease{
    "quota.lease_find",
    "SELECT lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time "
    "FROM leases WHERE lease_id = $1"};
constexpr db::Statement kFindLeaseForUpdate{
    "quota.lease_find_for_update",
    "SELECT lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time "
    "FROM leases WHERE lease_id = $1 FOR UPDATE"};
constexpr db::Statement kSetLeaseExpiry{
    "quota.lease_set_expiry",
    "UPDATE leases SET expire_time = $2, ttl_seconds = $3 WHERE lease_id = $1"};
constexpr db::Statement kDeleteLease{"quota.lease_delete",
                                     "DELETE FROM leases WHERE lease_id = $1"};
constexpr db::Statement kListActiveAll{
    "quota.lease_list_active_all",
    "SELECT lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time "
    "FROM leases WHERE expire_time > $1 ORDER BY create_time, lease_id"};
constexpr db::Statement kListActiveOwner{
    "quota.lease_list_active_owner",
    "SELECT lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time "
    "FROM leases WHERE owner = $1 AND expire_time > $2 ORDER BY create_time, lease_id"};
// The user's own leases and those of every team they belong to, in one query.
constexpr db::Statement kListActiveVisible{
    "quota.lease_list_active_visible",
    "SELECT lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time "
    "FROM leases WHERE expire_time > $2 AND (owner = 'users/' || $1 OR owner IN "
    "(SELECT 'teams/' || team_id FROM team_members WHERE username = $1)) "
    "ORDER BY create_time, lease_id"};
// SKIP LOCKED: a lease being heart-beaten or released right now is left for the next round.
constexpr db::Statement kDeleteExpired{
    "quota.lease_delete_expired",
    "DELETE FROM leases WHERE lease_id IN (SELECT lease_id FROM leases WHERE expire_time <= $1 "
    "ORDER BY expire_time LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING lease_id, owner, project, holder, cpu_millis, memory_mib, gpus, experiments, "
    "notebooks, serving_replicas, ttl_seconds, create_time, expire_time"};

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
  *l.mutable_create_time() = row[11].as<db::Timestamp>().ToProto();
  *l.mutable_expire_time() = row[12].as<db::Timestamp>().ToProto();
  return s;
}

std::string LeaseId(const Lease& lease) {
  const std::string& name = lease.name();
  return name.substr(name.find('/') + 1);
}

}  // namespace

const db::StatementSet& QuotaStore::Statements() {
  static const auto* set = new db::StatementSet{
      // identity reads
      kFindAccount, kTeamExists, kProjectExists,
      // quotas
      kFindQuota, kUpsertQuota, kEnsureQuota, kLockQuota, kSumActive,
      // leases
      kInsertLease, kFindLease, kFindLeaseForUpdate, kSetLeaseExpiry, kDeleteLease, kListActiveAll,
      kListActiveOwner, kListActiveVisible, kDeleteExpired};
  return *set;
}

std::optional<QuotaStore::Account> QuotaStore::FindAccount(pqxx::transaction_base& tx,
                                                           const std::string& username) {
  auto r = db::Exec(tx, kFindAccount, username);
  if (r.empty()) return std::nullopt;
  return Account{r[0][0].as<bool>(), r[0][1].as<bool>()};
}

bool QuotaStore::TeamExists(pqxx::transaction_base& tx, const std::string& team_id) {
  return !db::Exec(tx, kTeamExists, team_id).empty();
}

bool QuotaStore::ProjectExists(pqxx::transaction_base& tx, const std::string& project_id) {
  return !db::Exec(tx, kProjectExists, project_id).empty();
}

std::optional<Resources> QuotaStore::FindQuota(pqxx::transaction_base& tx,
                                               const std::string& owner) {
  auto r = db::Exec(tx, kFindQuota, owner);
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
  db::Exec(tx, kUpsertQuota, owner, pqxx::prepare::make_dynamic_params(values),
           db::Timestamp{now_micros});
}

Resources QuotaStore::LockQuota(pqxx::work& tx, const std::string& owner) {
  db::Exec(tx, kEnsureQuota, owner);
  auto r = db::Exec(tx, kLockQuota, owner);
  return ResourcesFromRow(r[0], 0);
}

QuotaStore::Usage QuotaStore::SumActive(pqxx::transaction_base& tx, const std::string& owner,
                                        int64_t now_micros) {
  auto r = db::Exec(tx, kSumActive, owner, db::Timestamp{now_micros});
  Usage u;
  u.used = ResourcesFromRow(r[0], 0);
  u.active = r[0][6].as<int32_t>();
  return u;
}

void QuotaStore::InsertLease(pqxx::work& tx, const Lease& lease, int32_t ttl_seconds) {
  const Resources& r = lease.resources();
  db::Exec(tx, kInsertLease, LeaseId(lease), lease.owner(), lease.project(), lease.holder(),
           r.cpu_millis(), r.memory_mib(), r.gpus(), r.experiments(), r.notebooks(),
           r.serving_replicas(), ttl_seconds, db::Timestamp::FromProto(lease.create_time()),
           db::Timestamp::FromProto(lease.expire_time()));
}

std::optional<QuotaStore::StoredLease> QuotaStore::FindLease(pqxx::transaction_base& tx,
                                                             const std::string& lease_id,
                                                             bool for_update) {
  auto r = db::Exec(tx, for_update ? kFindLeaseForUpdate : kFindLease, lease_id);
  if (r.empty()) return std::nullopt;
  return LeaseFromRow(r[0]);
}

void QuotaStore::SetLeaseExpiry(pqxx::work& tx, const std::string& lease_id, int64_t expire_micros,
                                int32_t ttl_seconds) {
  db::Exec(tx, kSetLeaseExpiry, lease_id, db::Timestamp{expire_micros}, ttl_seconds);
}

void QuotaStore::DeleteLease(pqxx::work& tx, const std::string& lease_id) {
  db::Exec(tx, kDeleteLease, lease_id);
}

std::vector<Lease> QuotaStore::ListActive(pqxx::transaction_base& tx, const std::string& owner,
                                          const std::string& visible_to, int64_t now_micros) {
  const db::Timestamp now{now_micros};
  pqxx::result r;
  if (!owner.empty()) {
    r = db::Exec(tx, kListActiveOwner, owner, now);
  } else if (!visible_to.empty()) {
    r = db::Exec(tx, kListActiveVisible, visible_to, now);
  } else {
    r = db::Exec(tx, kListActiveAll, now);
  }
  std::vector<Lease> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(LeaseFromRow(row).lease);
  return out;
}

std::vector<Lease> QuotaStore::DeleteExpired(pqxx::work& tx, int64_t now_micros, int limit) {
  auto r = db::Exec(tx, kDeleteExpired, db::Timestamp{now_micros}, limit);
  std::vector<Lease> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(LeaseFromRow(row).lease);
  return out;
}

}  // namespace submarine::permission
