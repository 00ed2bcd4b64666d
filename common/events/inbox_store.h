#pragma once
// Every SQL statement of the subscriber side (tables inbox and consumer_offsets of
// common/events/migrations). Each function runs inside the caller's transaction on a connection
// whose search_path is the subscriber's schema and throws libpqxx exceptions; callers run them
// under ConnectionPool::Transact. Stateless and thread-safe.

#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

class InboxStore {
 public:
  // Records `events` (all of `publisher`) as processed; returns the event ids that were not
  // there before, i.e. the events whose effect must be applied now.
  static std::unordered_set<std::string> Insert(
      pqxx::work& tx, const std::string& publisher,
      const std::vector<submarine::common::v1::Event>& events);

  // The durable offset of `publisher` (0 if none yet).
  static uint64_t ReadOffset(pqxx::work& tx, const std::string& publisher);

  // Moves the offset of `publisher` forward to `last_seq` (never backwards).
  static void AdvanceOffset(pqxx::work& tx, const std::string& publisher, uint64_t last_seq);
};

}  // namespace submarine::events
