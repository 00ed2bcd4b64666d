#pragma once
// AuditStore owns every SQL statement of the audit log (table audit_events of
// migrations/0003_credentials_audit.sql). Named db::Statement constants ("audit.*") prepared by
// the pool on every connection (Statements(), ConnectionPool::Options::statements); the list
// query is assembled from fixed fragments and $n placeholders only, never from request text.
// Methods run inside the caller's transaction and throw libpqxx exceptions. Times are Unix
// microseconds here and db::Timestamp at the database boundary. Stateless, thread-safe.

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/db/statement.h"
#include "submarine/common/v1/events.pb.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

struct AuditQuery {
  std::string principal;                // exact; empty = any
  std::string resource;                 // the resource and its children; empty = any
  std::optional<int64_t> start_micros;  // occur_time >= start
  std::optional<int64_t> end_micros;    // occur_time < end
  // Keyset cursor: rows strictly after (after_micros, after_id) in newest-first order.
  std::optional<std::pair<int64_t, int64_t>> after;
  int limit = 100;
};

struct StoredAuditEvent {
  int64_t id = 0;
  int64_t occur_micros = 0;
  v1::AuditEvent event;
};

class AuditStore {
 public:
  // Every statement of this store; give it to the pool (ConnectionPool::Options::statements).
  static const db::StatementSet& Statements();

  // Records one event of a stream (type = its topic; who/what/when from its header). An event
  // id already recorded is ignored.
  static void Record(pqxx::work& tx, const submarine::common::v1::Event& event);

  // Newest first (occur_time DESC, id DESC).
  static std::vector<StoredAuditEvent> List(pqxx::transaction_base& tx, const AuditQuery& query);
};

// "a_b%c" → "a\_b\%c": `text` matched literally inside a LIKE pattern (ESCAPE '\').
std::string EscapeLike(const std::string& text);

}  // namespace submarine::permission
