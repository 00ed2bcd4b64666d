#pragma once
// Every SQL statement of the subscriber side (tables inbox and consumer_offsets of
// common/events/migrations), named "events.*" and prepared by the pool on every connection (part
// of events::Statements(), outbox.h). Each function runs inside the caller's transaction on a
// connection whose search_path is the subscriber's schema and throws libpqxx exceptions; callers
// run them under ConnectionPool::Transact. Stateless and thread-safe.

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/db/statement.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

class InboxStore {
 public:
  // Every statement of this store (pools register them through events::Statements()).
  static const db::StatementSet& Statements();

  // Records `events` (consecutive, all of `publisher`, non-empty) as processed and moves the
  // offset forward to the last one's seq; returns the event ids that were not there before,
  // i.e. the events whose effect must be applied now (in the same transaction).
  static std::unordered_set<std::string> Insert(
      pqxx::work& tx, const std::string& publisher,
      const std::vector<submarine::common::v1::Event>& events);

  // The durable offset of `publisher` (0 if none yet).
  static uint64_t ReadOffset(pqxx::work& tx, const std::string& publisher);

  // Retention: deletes up to `limit` inbox rows (of any publisher) processed more than
  // `older_than_hours` ago whose seq is at or below their publisher's offset; returns how many.
  static int64_t Prune(pqxx::work& tx, uint32_t older_than_hours, uint32_t limit);
};

}  // namespace submarine::events
