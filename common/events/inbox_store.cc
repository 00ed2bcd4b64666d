#include "common/events/inbox_store.h"

namespace submarine::events {
namespace {

// One round trip for a whole batch: ids and sequences travel as two array parameters, and the
// offset moves in the same statement (the transaction commits both with the effects or neither).
constexpr db::Statement kInsertInbox{"events.insert_inbox", R"sql(
WITH fresh AS (
  INSERT INTO inbox (publisher, event_id, seq)
  SELECT $1, e.id::uuid, e.seq FROM unnest($2::text[], $3::bigint[]) AS e(id, seq)
  ON CONFLICT (publisher, event_id) DO NOTHING
  RETURNING event_id::text
), advanced AS (
  INSERT INTO consumer_offsets (publisher, last_seq) VALUES ($1, $4)
  ON CONFLICT (publisher) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()
  WHERE consumer_offsets.last_seq < EXCLUDED.last_seq
)
SELECT event_id FROM fresh)sql"};

constexpr db::Statement kReadOffset{"events.read_offset",
                                    "SELECT last_seq FROM consumer_offsets WHERE publisher = $1"};

// Deletes (at most $2 of) the inbox rows older than $1 hours at or below their publisher's
// offset: events up to the offset are dropped by sequence before they reach the inbox, so those
// rows only protect against an operator rewinding the offset within the retention.
constexpr db::Statement kPruneInbox{"events.prune_inbox", R"sql(
DELETE FROM inbox WHERE (publisher, event_id) IN (
  SELECT i.publisher, i.event_id FROM inbox i JOIN consumer_offsets c USING (publisher)
  WHERE i.seq <= c.last_seq AND i.processed_at < now() - $1::bigint * INTERVAL '1 hour'
  LIMIT $2))sql"};

// A PostgreSQL array literal of quoted elements (the value of one parameter, never SQL text).
template <typename Fn>
std::string ArrayLiteral(const std::vector<submarine::common::v1::Event>& events, Fn element) {
  std::string out = "{";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : element(events[i])) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

const db::StatementSet& InboxStore::Statements() {
  static const auto* set = new db::StatementSet{kInsertInbox, kReadOffset, kPruneInbox};
  return *set;
}

std::unordered_set<std::string> InboxStore::Insert(
    pqxx::work& tx, const std::string& publisher,
    const std::vector<submarine::common::v1::Event>& events) {
  std::string ids = ArrayLiteral(events, [](const auto& e) { return e.header().event_id(); });
  std::string seqs =
      ArrayLiteral(events, [](const auto& e) { return std::to_string(e.header().seq()); });
  std::unordered_set<std::string> inserted;
  int64_t last = events.empty() ? 0 : static_cast<int64_t>(events.back().header().seq());
  for (const auto& row : db::Exec(tx, kInsertInbox, publisher, ids, seqs, last)) {
    inserted.insert(row[0].as<std::string>());
  }
  return inserted;
}

int64_t InboxStore::Prune(pqxx::work& tx, uint32_t older_than_hours, uint32_t limit) {
  return db::Exec(tx, kPruneInbox, static_cast<int64_t>(older_than_hours),
                  static_cast<int64_t>(limit))
      .affected_rows();
}

uint64_t InboxStore::ReadOffset(pqxx::work& tx, const std::string& publisher) {
  auto r = db::Exec(tx, kReadOffset, publisher);
  return r.empty() ? 0 : r[0][0].as<int64_t>();
}

}  // namespace submarine::events
