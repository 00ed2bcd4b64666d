#pragma once
// QuotaStore owns every SQL statement of quotas and leases (tables quotas and leases of
// migrations/0002_quotas.sql) plus the identity reads their authorization needs (users, teams,
// team_members, projects of migration 0001). Statements are named db::Statement constants
// ("quota.*"), prepared by the pool on every connection (Statements(),
// ConnectionPool::Options::statements) and take $n parameters only. Every method runs inside the
// caller's transaction and throws libpqxx exceptions, which ConnectionPool::Transact/Read turn
// into statuses. Times are microseconds since the Unix epoch, from the manager's injected clock;
// they cross the database boundary as db::Timestamp. Stateless, thread-safe.

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/db/statement.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

// The fields of v1::Resources in declaration order, which is also the column order of the quotas
// and leases tables (every statement lists them in this order).
struct ResourceField {
  const char* name;        // proto field name, e.g. "cpu_millis"
  const char* camel_name;  // for ErrorInfo metadata keys, e.g. "cpuMillis"
  bool (v1::Resources::*has)() const;
  int64_t (v1::Resources::*get)() const;
  void (v1::Resources::*set)(int64_t);
};
inline constexpr ResourceField kResourceFields[] = {
    {"cpu_millis", "cpuMillis", &v1::Resources::has_cpu_millis, &v1::Resources::cpu_millis,
     &v1::Resources::set_cpu_millis},
    {"memory_mib", "memoryMib", &v1::Resources::has_memory_mib, &v1::Resources::memory_mib,
     &v1::Resources::set_memory_mib},
    {"gpus", "gpus", &v1::Resources::has_gpus, &v1::Resources::gpus, &v1::Resources::set_gpus},
    {"experiments", "experiments", &v1::Resources::has_experiments, &v1::Resources::experiments,
     &v1::Resources::set_experiments},
    {"notebooks", "notebooks", &v1::Resources::has_notebooks, &v1::Resources::notebooks,
     &v1::Resources::set_notebooks},
    {"serving_replicas", "servingReplicas", &v1::Resources::has_serving_replicas,
     &v1::Resources::serving_replicas, &v1::Resources::set_serving_replicas},
};

class QuotaStore {
 public:
  // Every statement of this store; give it to the pool (ConnectionPool::Options::statements).
  static const db::StatementSet& Statements();

  // ---- Identity reads (tables owned by the identity part of the service).
  struct Account {
    bool disabled = false;
    bool admin = false;
  };
  // The user's flags, or nullopt if there is no such user.
  static std::optional<Account> FindAccount(pqxx::transaction_base& tx,
                                            const std::string& username);
  static bool TeamExists(pqxx::transaction_base& tx, const std::string& team_id);
  static bool ProjectExists(pqxx::transaction_base& tx, const std::string& project_id);

  // ---- Quotas. `owner` is the full name ("users/u" or "teams/t").
  // The explicit limits (unset fields follow the default); nullopt if the owner has no row.
  static std::optional<v1::Resources> FindQuota(pqxx::transaction_base& tx,
                                                const std::string& owner);
  // Replaces the explicit limits (unset fields become NULL: follow the default).
  static void UpsertQuota(pqxx::work& tx, const std::string& owner, const v1::Resources& limits,
                          int64_t now_micros);
  // Makes sure the owner's quota row exists and locks it until the transaction ends; returns the
  // explicit limits. Concurrent AcquireLease calls for one owner serialize here.
  static v1::Resources LockQuota(pqxx::work& tx, const std::string& owner);

  // Sum of the owner's active leases (expire_time > now) and their number.
  struct Usage {
    v1::Resources used;  // every field set (0 when nothing is held)
    int32_t active = 0;
  };
  static Usage SumActive(pqxx::transaction_base& tx, const std::string& owner, int64_t now_micros);

  // ---- Leases. `lease.name` is "leases/{id}"; resources absent in the lease count as 0.
  static void InsertLease(pqxx::work& tx, const v1::Lease& lease, int32_t ttl_seconds);
  struct StoredLease {
    v1::Lease lease;
    int32_t ttl_seconds = 0;
  };
  // By lease id (the last segment of the name); `for_update` locks the row.
  static std::optional<StoredLease> FindLease(pqxx::transaction_base& tx,
                                              const std::string& lease_id, bool for_update);
  static void SetLeaseExpiry(pqxx::work& tx, const std::string& lease_id, int64_t expire_micros,
                             int32_t ttl_seconds);
  static void DeleteLease(pqxx::work& tx, const std::string& lease_id);
  // Active leases, oldest first (create_time, then id): of one owner, of every owner (owner and
  // visible_to both empty), or of the owners visible to a user ("users/{visible_to}" and the
  // teams they belong to).
  static std::vector<v1::Lease> ListActive(pqxx::transaction_base& tx, const std::string& owner,
                                           const std::string& visible_to, int64_t now_micros);
  // Deletes up to `limit` leases whose expire_time <= now; returns them as they were.
  static std::vector<v1::Lease> DeleteExpired(pqxx::work& tx, int64_t now_micros, int limit);
};

}  // namespace submarine::permission
