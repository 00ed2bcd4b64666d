#include "services/environment/environment_store.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"

namespace submarine::environment {
namespace {

using submarine::environment::v1::Environment;
using google::protobuf::util::TimeUtil;

constexpr char kFind[] = "environment_find";
constexpr char kFindForUpdate[] = "environment_find_for_update";
constexpr char kInsert[] = "environment_insert";
constexpr char kUpdate[] = "environment_update";
constexpr char kDelete[] = "environment_delete";
constexpr char kNextUid[] = "environment_next_uid";
constexpr char kLockRequestId[] = "environment_lock_request_id";
constexpr char kFindResponse[] = "environment_find_response";
constexpr char kSaveResponse[] = "environment_save_response";
constexpr char kMarkOnce[] = "environment_mark_once";
constexpr char kPruneResponses[] = "environment_prune_responses";

constexpr char kFindSql[] =
    "SELECT id, body FROM environments WHERE project = $1 AND environment_id = $2";
constexpr char kInsertSql[] =
    "INSERT INTO environments (project, environment_id, uid, display_name, image, labels, body, "
    "etag, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, "
    "TIMESTAMPTZ 'epoch' + $9::bigint * INTERVAL '1 microsecond', "
    "TIMESTAMPTZ 'epoch' + $10::bigint * INTERVAL '1 microsecond') RETURNING id";
constexpr char kUpdateSql[] =
    "UPDATE environments SET uid = $2, display_name = $3, image = $4, labels = $5::jsonb, "
    "body = $6, etag = $7, update_time = TIMESTAMPTZ 'epoch' + $8::bigint * INTERVAL "
    "'1 microsecond' WHERE id = $1";
constexpr char kDeleteSql[] = "DELETE FROM environments WHERE id = $1";
constexpr char kNextUidSql[] = "SELECT nextval('environment_uid_seq')";
constexpr char kLockRequestIdSql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('environment.request_id.' || $1, 0))";
constexpr char kFindResponseSql[] =
    "SELECT method, request_hash, response FROM request_dedup WHERE request_id = $1";
constexpr char kSaveResponseSql[] =
    "INSERT INTO request_dedup (request_id, method, request_hash, response) "
    "VALUES ($1, $2, $3, $4)";
constexpr char kPruneResponsesSql[] =
    "DELETE FROM request_dedup WHERE created_at < now() - $1::bigint * INTERVAL '1 hour'";
constexpr char kMarkOnceSql[] =
    "INSERT INTO service_state (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key";

// The list statement is assembled from these fixed fragments and $n placeholders only.
constexpr char kListSelect[] = "SELECT id, body FROM environments WHERE project = $1";

std::string LabelsJson(const Environment& env) {
  // Keys and values are validated ([a-z0-9_-], no quotes) before they get here, but escape
  // anyway so the JSON is always well formed.
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      o += c;
    }
    return o;
  };
  std::string json = "{";
  bool first = true;
  for (const auto& [k, v] : env.labels()) {
    absl::StrAppend(&json, first ? "" : ",", "\"", esc(k), "\":\"", esc(v), "\"");
    first = false;
  }
  return json + "}";
}

int64_t Micros(const google::protobuf::Timestamp& ts) { return TimeUtil::TimestampToMicroseconds(ts); }

StoredEnvironment FromRow(const pqxx::row& row) {
  StoredEnvironment s;
  s.id = row[0].as<int64_t>();
  pqxx::binarystring body(row[1]);
  s.environment.ParseFromString(body.str());
  return s;
}

}  // namespace

void EnvironmentStore::Prepare(pqxx::connection& conn) {
  conn.prepare(kFind, kFindSql);
  conn.prepare(kFindForUpdate, std::string(kFindSql) + " FOR UPDATE");
  conn.prepare(kInsert, kInsertSql);
  conn.prepare(kUpdate, kUpdateSql);
  conn.prepare(kDelete, kDeleteSql);
  conn.prepare(kNextUid, kNextUidSql);
  conn.prepare(kLockRequestId, kLockRequestIdSql);
  conn.prepare(kFindResponse, kFindResponseSql);
  conn.prepare(kSaveResponse, kSaveResponseSql);
  conn.prepare(kMarkOnce, kMarkOnceSql);
  conn.prepare(kPruneResponses, kPruneResponsesSql);
}

std::optional<StoredEnvironment> EnvironmentStore::Find(pqxx::transaction_base& tx,
                                                        const std::string& project,
                                                        const std::string& environment_id,
                                                        bool for_update) {
  auto r = tx.exec_prepared(for_update ? kFindForUpdate : kFind, project, environment_id);
  if (r.empty()) return std::nullopt;
  return FromRow(r[0]);
}

int64_t EnvironmentStore::Insert(pqxx::work& tx, const std::string& project,
                                 const std::string& environment_id, const Environment& env) {
  std::string body = env.SerializeAsString();
  auto r = tx.exec_prepared(kInsert, project, environment_id, env.uid(), env.display_name(),
                            env.image(), LabelsJson(env), pqxx::binarystring(body), env.etag(),
                            Micros(env.create_time()), Micros(env.update_time()));
  return r[0][0].as<int64_t>();
}

void EnvironmentStore::Update(pqxx::work& tx, int64_t id, const Environment& env) {
  std::string body = env.SerializeAsString();
  tx.exec_prepared(kUpdate, id, env.uid(), env.display_name(), env.image(), LabelsJson(env),
                   pqxx::binarystring(body), env.etag(), Micros(env.update_time()));
}

void EnvironmentStore::Delete(pqxx::work& tx, int64_t id) { tx.exec_prepared(kDelete, id); }

std::vector<StoredEnvironment> EnvironmentStore::List(pqxx::transaction_base& tx,
                                                      const ListQuery& q) {
  std::string sql = kListSelect;
  std::vector<std::string> params = {q.project};
  auto param = [&params](std::string v) {
    params.push_back(std::move(v));
    return absl::StrCat("$", params.size());
  };
  for (const auto& t : q.terms) {
    if (t.op == FilterTerm::Op::kHas) {
      absl::StrAppend(&sql, " AND labels ? ", param(t.label_key));
      continue;
    }
    std::string column;
    switch (t.field) {
      case FilterTerm::Field::kName: column = "environment_id"; break;
      case FilterTerm::Field::kDisplayName: column = "display_name"; break;
      case FilterTerm::Field::kImage: column = "image"; break;
      case FilterTerm::Field::kLabel: column = absl::StrCat("(labels ->> ", param(t.label_key), ")"); break;
    }
    switch (t.op) {
      case FilterTerm::Op::kEquals: absl::StrAppend(&sql, " AND ", column, " = ", param(t.value)); break;
      case FilterTerm::Op::kNotEquals:
        absl::StrAppend(&sql, " AND ", column, " IS DISTINCT FROM ", param(t.value));
        break;
      case FilterTerm::Op::kPrefix: {
        std::string pattern;
        for (char c : t.value) {
          if (c == '%' || c == '_' || c == '\\') pattern += '\\';
          pattern += c;
        }
        absl::StrAppend(&sql, " AND ", column, " LIKE ", param(pattern + "%"));
        break;
      }
      case FilterTerm::Op::kHas: break;  // handled above
    }
  }
  if (q.only_ids) {
    absl::StrAppend(&sql, " AND environment_id = ANY(", param(db::TextArray(*q.only_ids)),
                    "::text[])");
  }
  const char* cmp = q.descending ? "<" : ">";
  if (q.after) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      q.after->first.time_since_epoch()).count();
    std::string t = param(absl::StrCat(micros));
    std::string i = param(absl::StrCat(q.after->second));
    absl::StrAppend(&sql, " AND (create_time, id) ", cmp, " (TIMESTAMPTZ 'epoch' + ", t,
                    "::bigint * INTERVAL '1 microsecond', ", i, "::bigint)");
  }
  absl::StrAppend(&sql, q.descending ? " ORDER BY create_time DESC, id DESC"
                                     : " ORDER BY create_time, id",
                  " LIMIT ", q.limit);
  auto r = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
  std::vector<StoredEnvironment> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(FromRow(row));
  return out;
}

int64_t EnvironmentStore::NextUidCounter(pqxx::work& tx) {
  return tx.exec_prepared(kNextUid)[0][0].as<int64_t>();
}

void EnvironmentStore::LockRequestId(pqxx::work& tx, const std::string& request_id) {
  tx.exec_prepared(kLockRequestId, request_id);
}

std::optional<EnvironmentStore::SavedResponse> EnvironmentStore::FindResponse(
    pqxx::work& tx, const std::string& request_id) {
  auto r = tx.exec_prepared(kFindResponse, request_id);
  if (r.empty()) return std::nullopt;
  return SavedResponse{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                       pqxx::binarystring(r[0][2]).str()};
}

void EnvironmentStore::SaveResponse(pqxx::work& tx, const std::string& request_id,
                                    const SavedResponse& saved) {
  tx.exec_prepared(kSaveResponse, request_id, saved.method, saved.request_hash,
                   pqxx::binarystring(saved.response));
}

int64_t EnvironmentStore::PruneResponses(pqxx::work& tx, uint32_t hours) {
  return tx.exec_prepared(kPruneResponses, static_cast<int64_t>(hours)).affected_rows();
}

bool EnvironmentStore::MarkOnce(pqxx::work& tx, const std::string& key) {
  return !tx.exec_prepared(kMarkOnce, key).empty();
}

}  // namespace submarine::environment
