#include "services/permission/audit_store.h"

#include "absl/strings/str_cat.h"

namespace submarine::permission {
namespace {

constexpr db::Statement kRecord{
    "audit.record",
    "INSERT INTO audit_events (event_id, publisher, seq, type, resource, principal, request_id, "
    "occur_time) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING"};
// The list statement is assembled from these fixed fragments and $n placeholders only.
constexpr char kListSelect[] =
    "SELECT id, occur_time, event_id::text, publisher, seq, type, resource, principal, "
    "request_id FROM audit_events WHERE TRUE";

}  // namespace

std::string EscapeLike(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

const db::StatementSet& AuditStore::Statements() {
  static const auto* set = new db::StatementSet{kRecord};
  return *set;
}

void AuditStore::Record(pqxx::work& tx, const submarine::common::v1::Event& event) {
  const auto& h = event.header();
  db::Exec(tx, kRecord, h.event_id(), h.publisher(), static_cast<int64_t>(h.seq()), event.topic(),
           h.resource(), h.principal(), h.request_id(), db::Timestamp::FromProto(h.occurred_at()));
}

std::vector<StoredAuditEvent> AuditStore::List(pqxx::transaction_base& tx, const AuditQuery& q) {
  std::string sql = kListSelect;
  std::vector<std::string> params;
  auto param = [&params](std::string v) {
    params.push_back(std::move(v));
    return absl::StrCat("$", params.size());
  };
  auto time_of = [&](int64_t micros) { return param(pqxx::to_string(db::Timestamp{micros})); };
  if (!q.principal.empty()) absl::StrAppend(&sql, " AND principal = ", param(q.principal));
  if (!q.resource.empty()) {
    std::string exact = param(q.resource);
    std::string children = param(EscapeLike(q.resource) + "/%");
    absl::StrAppend(&sql, " AND (resource = ", exact, " OR resource LIKE ", children,
                    " ESCAPE '\\')");
  }
  if (q.start_micros) absl::StrAppend(&sql, " AND occur_time >= ", time_of(*q.start_micros));
  if (q.end_micros) absl::StrAppend(&sql, " AND occur_time < ", time_of(*q.end_micros));
  if (q.after) {
    std::string t = time_of(q.after->first);
    absl::StrAppend(&sql, " AND (occur_time, id) < (", t, ", ",
                    param(absl::StrCat(q.after->second)), "::bigint)");
  }
  absl::StrAppend(&sql, " ORDER BY occur_time DESC, id DESC LIMIT ", q.limit);
  auto r = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
  std::vector<StoredAuditEvent> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    StoredAuditEvent s;
    s.id = row[0].as<int64_t>();
    const auto occur = row[1].as<db::Timestamp>();
    s.occur_micros = occur.micros;
    auto& e = s.event;
    e.set_event_id(row[2].as<std::string>());
    e.set_publisher(row[3].as<std::string>());
    e.set_seq(row[4].as<uint64_t>());
    e.set_type(row[5].as<std::string>());
    e.set_resource(row[6].as<std::string>());
    e.set_principal(row[7].as<std::string>());
    e.set_request_id(row[8].as<std::string>());
    *e.mutable_occur_time() = occur.ToProto();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace submarine::permission
