#include "services/environment/environment_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/api/labels.h"
#include "common/db/list_query.h"
#include "common/db/pool.h"

namespace submarine::environment {
namespace {

using submarine::environment::v1::Environment;

constexpr db::Statement kFind{
    "environment.find",
    "SELECT id, body FROM environments WHERE project = $1 AND environment_id = $2"};
constexpr db::Statement kFindForUpdate{
    "environment.find_for_update",
    "SELECT id, body FROM environments WHERE project = $1 AND environment_id = $2 FOR UPDATE"};
constexpr db::Statement kInsert{
    "environment.insert",
    "INSERT INTO environments (project, environment_id, uid, display_name, image, labels, body, "
    "etag, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10) "
    "RETURNING id"};
constexpr db::Statement kUpdate{
    "environment.update",
    "UPDATE environments SET uid = $2, display_name = $3, image = $4, labels = $5::jsonb, "
    "body = $6, etag = $7, update_time = $8 WHERE id = $1"};
constexpr db::Statement kDelete{"environment.delete", "DELETE FROM environments WHERE id = $1"};
constexpr db::Statement kCountInProject{"environment.count_in_project",
                                        "SELECT count(*) FROM environments WHERE project = $1"};
constexpr db::Statement kNextUid{"environment.next_uid", "SELECT nextval('environment_uid_seq')"};
constexpr db::Statement kMarkOnce{
    "environment.mark_once",
    "INSERT INTO service_state (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key"};

// The list statement is assembled from these fixed fragments and $n placeholders only.
constexpr char kListSelect[] = "SELECT id, body FROM environments WHERE project = $1";

StoredEnvironment FromRow(const pqxx::row& row) {
  StoredEnvironment s;
  s.id = row[0].as<int64_t>();
  pqxx::binarystring body(row[1]);
  s.environment.ParseFromString(body.str());
  return s;
}

}  // namespace

const db::StatementSet& EnvironmentStore::Statements() {
  static const auto* set = new db::StatementSet{kFind,   kFindForUpdate,  kInsert,  kUpdate,
                                                kDelete, kCountInProject, kNextUid, kMarkOnce};
  return *set;
}

std::optional<StoredEnvironment> EnvironmentStore::Find(pqxx::transaction_base& tx,
                                                        const std::string& project,
                                                        const std::string& environment_id,
                                                        bool for_update) {
  auto r = db::Exec(tx, for_update ? kFindForUpdate : kFind, project, environment_id);
  if (r.empty()) return std::nullopt;
  return FromRow(r[0]);
}

int64_t EnvironmentStore::Insert(pqxx::work& tx, const std::string& project,
                                 const std::string& environment_id, const Environment& env) {
  std::string body = env.SerializeAsString();
  auto r = db::Exec(tx, kInsert, project, environment_id, env.uid(), env.display_name(),
                    env.image(), api::LabelsJson(env.labels()), pqxx::binarystring(body),
                    env.etag(), db::Timestamp::FromProto(env.create_time()),
                    db::Timestamp::FromProto(env.update_time()));
  return r[0][0].as<int64_t>();
}

void EnvironmentStore::Update(pqxx::work& tx, int64_t id, const Environment& env) {
  std::string body = env.SerializeAsString();
  db::Exec(tx, kUpdate, id, env.uid(), env.display_name(), env.image(),
           api::LabelsJson(env.labels()), pqxx::binarystring(body), env.etag(),
           db::Timestamp::FromProto(env.update_time()));
}

void EnvironmentStore::Delete(pqxx::work& tx, int64_t id) { db::Exec(tx, kDelete, id); }

int64_t EnvironmentStore::CountInProject(pqxx::transaction_base& tx, const std::string& project) {
  return db::Exec(tx, kCountInProject, project)[0][0].as<int64_t>();
}

api::FilterFields EnvironmentStore::FilterFields(const std::string& project) {
  using api::FilterType;
  // A full name in this project means its id; one in another project matches nothing (an id
  // never holds a slash).
  std::string own = absl::StrCat("projects/", project, "/environments/");
  return api::WithResourceFields({
      {.name = "name",
       .sql = "environment_id",
       .normalize =
           [own](const std::string& v) {
             return absl::StartsWith(v, own) ? v.substr(own.size()) : v;
           }},
      {.name = "display_name", .sql = "display_name", .aliases = {"displayName"}},
      {.name = "image", .sql = "image"},
  });
}

std::vector<StoredEnvironment> EnvironmentStore::List(pqxx::transaction_base& tx,
                                                      const ListQuery& q) {
  db::ListQuery query(kListSelect, {q.project});
  query.Where(q.filter);
  if (q.only_ids) query.OnlyIds("environment_id", *q.only_ids);
  if (q.after) query.After("create_time", "id", q.after->first, q.after->second, q.descending);
  std::vector<StoredEnvironment> out;
  for (const auto& row : query.Run(tx, "create_time", "id", q.descending, q.limit)) {
    out.push_back(FromRow(row));
  }
  return out;
}

int64_t EnvironmentStore::NextUidCounter(pqxx::work& tx) {
  return db::Exec(tx, kNextUid)[0][0].as<int64_t>();
}

bool EnvironmentStore::MarkOnce(pqxx::work& tx, const std::string& key) {
  return !db::Exec(tx, kMarkOnce, key).empty();
}

}  // namespace submarine::environment
