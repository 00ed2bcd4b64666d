#include "common/events/inbox_store.h"

namespace submarine::events {
namespace {

// One round trip for a whole batch: ids and sequences travel as two array parameters.
constexpr char kInsertInbox[] = R"sql(
INSERT INTO inbox (publisher, event_id, seq)
SELECT $1, e.id::uuid, e.seq FROM unnest($2::text[], $3::bigint[]) AS e(id, seq)
ON CONFLICT (publisher, event_id) DO NOTHING
RETURNING event_id::text)sql";

constexpr char kReadOffset[] = "SELECT last_seq FROM consumer_offsets WHERE publisher = $1";

constexpr char kAdvanceOffset[] = R"sql(
INSERT INTO consumer_offsets (publisher, last_seq) VALUES ($1, $2)
ON CONFLICT (publisher) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()
WHERE consumer_offsets.last_seq < EXCLUDED.last_seq)sql";

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

std::unordered_set<std::string> InboxStore::Insert(
    pqxx::work& tx, const std::string& publisher,
    const std::vector<submarine::common::v1::Event>& events) {
  std::string ids = ArrayLiteral(events, [](const auto& e) { return e.header().event_id(); });
  std::string seqs =
      ArrayLiteral(events, [](const auto& e) { return std::to_string(e.header().seq()); });
  std::unordered_set<std::string> inserted;
  for (const auto& row : tx.exec_params(kInsertInbox, publisher, ids, seqs)) {
    inserted.insert(row[0].as<std::string>());
  }
  return inserted;
}

uint64_t InboxStore::ReadOffset(pqxx::work& tx, const std::string& publisher) {
  auto r = tx.exec_params(kReadOffset, publisher);
  return r.empty() ? 0 : r[0][0].as<int64_t>();
}

void InboxStore::AdvanceOffset(pqxx::work& tx, const std::string& publisher, uint64_t last_seq) {
  tx.exec_params(kAdvanceOffset, publisher, static_cast<int64_t>(last_seq));
}

}  // namespace submarine::events
