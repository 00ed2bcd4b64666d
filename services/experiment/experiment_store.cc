#include "services/experiment/experiment_store.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/api/labels.h"
#include "common/db/list_query.h"
#include "common/db/pool.h"

namespace submarine::experiment {
namespace {

using v1::Experiment;

constexpr char kColumns[] = "id, project, experiment_id, body, stop_reason, lease, workload_id";

constexpr db::Statement kFind{
    "experiment.find",
    "SELECT id, project, experiment_id, body, stop_reason, lease, workload_id FROM experiments "
    "WHERE project = $1 AND experiment_id = $2"};
constexpr db::Statement kFindForUpdate{
    "experiment.find_for_update",
    "SELECT id, project, experiment_id, body, stop_reason, lease, workload_id FROM experiments "
    "WHERE project = $1 AND experiment_id = $2 FOR UPDATE"};
constexpr db::Statement kLock{
    "experiment.lock",
    "SELECT id, project, experiment_id, body, stop_reason, lease, workload_id FROM experiments "
    "WHERE id = $1 FOR UPDATE"};
constexpr db::Statement kInsert{
    "experiment.insert",
    "INSERT INTO experiments (project, experiment_id, uid, owner, framework, state, priority, "
    "labels, body, etag, create_time, update_time) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12) RETURNING id"};
constexpr db::Statement kSave{
    "experiment.save",
    "UPDATE experiments SET state = $2, labels = $3::jsonb, body = $4, etag = $5, "
    "update_time = $6, stop_reason = $7, lease = $8, workload_id = $9, framework = $10, "
    "priority = $11 WHERE id = $1"};
constexpr db::Statement kDelete{"experiment.delete", "DELETE FROM experiments WHERE id = $1"};
constexpr db::Statement kUnfinished{
    "experiment.unfinished",
    "SELECT id, project, experiment_id, body, stop_reason, lease, workload_id FROM experiments "
    "WHERE state IN ('PENDING', 'ACCEPTED', 'CREATED', 'RUNNING') "
    "ORDER BY priority DESC, create_time, id"};
// What says whether a cached row is still current, without its body.
constexpr db::Statement kUnfinishedVersions{
    "experiment.unfinished_versions",
    "SELECT id, etag, stop_reason, lease, workload_id FROM experiments "
    "WHERE state IN ('PENDING', 'ACCEPTED', 'CREATED', 'RUNNING') "
    "ORDER BY priority DESC, create_time, id"};
constexpr db::Statement kByIds{
    "experiment.by_ids",
    "SELECT id, project, experiment_id, body, stop_reason, lease, workload_id FROM experiments "
    "WHERE id = ANY($1::bigint[])"};
constexpr db::Statement kKnownUids{"experiment.known_uids",
                                   "SELECT uid FROM experiments WHERE uid = ANY($1::text[])"};
constexpr db::Statement kCountInProject{"experiment.count_in_project",
                                        "SELECT count(*) FROM experiments WHERE project = $1"};
constexpr db::Statement kNextId{"experiment.next_id", "SELECT nextval('experiment_id_seq')"};

std::optional<std::string> OptionalText(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

StoredExperiment FromRow(const pqxx::row& row) {
  StoredExperiment s;
  s.id = row[0].as<int64_t>();
  s.project = row[1].as<std::string>();
  s.experiment_id = row[2].as<std::string>();
  pqxx::binarystring body(row[3]);
  s.experiment.ParseFromString(body.str());
  s.stop_reason = OptionalText(row[4]);
  s.lease = OptionalText(row[5]);
  s.workload_id = OptionalText(row[6]);
  return s;
}

std::vector<StoredExperiment> FromRows(const pqxx::result& r) {
  std::vector<StoredExperiment> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(FromRow(row));
  return out;
}

}  // namespace

const db::StatementSet& ExperimentStore::Statements() {
  static const auto* set = new db::StatementSet{kFind,
                                                kFindForUpdate,
                                                kLock,
                                                kInsert,
                                                kSave,
                                                kDelete,
                                                kUnfinished,
                                                kKnownUids,
                                                kCountInProject,
                                                kNextId,
                                                kUnfinishedVersions,
                                                kByIds};
  return *set;
}

std::optional<StoredExperiment> ExperimentStore::Find(pqxx::transaction_base& tx,
                                                      const std::string& project,
                                                      const std::string& experiment_id,
                                                      bool for_update) {
  auto r = db::Exec(tx, for_update ? kFindForUpdate : kFind, project, experiment_id);
  if (r.empty()) return std::nullopt;
  return FromRow(r[0]);
}

std::optional<StoredExperiment> ExperimentStore::Lock(pqxx::work& tx, int64_t id) {
  auto r = db::Exec(tx, kLock, id);
  if (r.empty()) return std::nullopt;
  return FromRow(r[0]);
}

int64_t ExperimentStore::Insert(pqxx::work& tx, const std::string& project,
                                const std::string& experiment_id, const Experiment& e) {
  std::string body = e.SerializeAsString();
  auto r = db::Exec(tx, kInsert, project, experiment_id, e.uid(), e.owner(),
                    e.reproducibility().resolved_spec().meta().framework(),
                    v1::State_Name(e.state()), e.spec().priority(), api::LabelsJson(e.labels()),
                    pqxx::binarystring(body), e.etag(), db::Timestamp::FromProto(e.create_time()),
                    db::Timestamp::FromProto(e.update_time()));
  return r[0][0].as<int64_t>();
}

void ExperimentStore::Save(pqxx::work& tx, const StoredExperiment& s) {
  const Experiment& e = s.experiment;
  std::string body = e.SerializeAsString();
  db::Exec(tx, kSave, s.id, v1::State_Name(e.state()), api::LabelsJson(e.labels()),
           pqxx::binarystring(body), e.etag(), db::Timestamp::FromProto(e.update_time()),
           s.stop_reason, s.lease, s.workload_id,
           e.reproducibility().resolved_spec().meta().framework(), e.spec().priority());
}

void ExperimentStore::Delete(pqxx::work& tx, int64_t id) { db::Exec(tx, kDelete, id); }

std::vector<StoredExperiment> ExperimentStore::Unfinished(pqxx::transaction_base& tx) {
  return FromRows(db::Exec(tx, kUnfinished));
}

std::vector<ExperimentStore::Version> ExperimentStore::UnfinishedVersions(
    pqxx::transaction_base& tx) {
  std::vector<Version> out;
  for (const auto& row : db::Exec(tx, kUnfinishedVersions)) {
    out.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), OptionalText(row[2]),
                   OptionalText(row[3]), OptionalText(row[4])});
  }
  return out;
}

std::vector<StoredExperiment> ExperimentStore::ByIds(pqxx::transaction_base& tx,
                                                     const std::vector<int64_t>& ids) {
  std::vector<std::string> text;
  text.reserve(ids.size());
  for (int64_t id : ids) text.push_back(std::to_string(id));
  return FromRows(db::Exec(tx, kByIds, db::TextArray(text)));
}

std::vector<std::string> ExperimentStore::KnownUids(pqxx::transaction_base& tx,
                                                    const std::vector<std::string>& uids) {
  std::vector<std::string> out;
  for (const auto& row : db::Exec(tx, kKnownUids, db::TextArray(uids))) {
    out.push_back(row[0].as<std::string>());
  }
  return out;
}

int64_t ExperimentStore::CountInProject(pqxx::transaction_base& tx, const std::string& project) {
  return db::Exec(tx, kCountInProject, project)[0][0].as<int64_t>();
}

int64_t ExperimentStore::NextIdCounter(pqxx::work& tx) {
  return db::Exec(tx, kNextId)[0][0].as<int64_t>();
}

api::FilterFields ExperimentStore::FilterFields(const std::string& project) {
  using api::FilterType;
  // The State enum's names in its order, which is the order of the lifecycle.
  static const auto* kStates = [] {
    auto* names = new std::vector<std::string>;
    const auto* e = v1::State_descriptor();
    for (int i = 0; i < e->value_count(); ++i) {
      if (e->value(i)->number() != v1::STATE_UNSPECIFIED) names->push_back(e->value(i)->name());
    }
    return names;
  }();
  // A full name in this project means its id; one in another project matches nothing (an id
  // never holds a slash).
  std::string own = absl::StrCat("projects/", project, "/experiments/");
  return api::WithResourceFields({
      {.name = "name",
       .sql = "experiment_id",
       .normalize =
           [own](const std::string& v) {
             return absl::StartsWith(v, own) ? v.substr(own.size()) : v;
           }},
      {.name = "state",
       .type = FilterType::kEnum,
       .sql = "state",
       .values = *kStates,
       .ordered = true},
      {.name = "owner", .sql = "owner"},
      // Stored resolved, in lower case.
      {.name = "framework",
       .sql = "framework",
       .normalize = [](const std::string& v) { return absl::AsciiStrToLower(v); }},
      {.name = "priority", .type = FilterType::kInt, .sql = "priority"},
  });
}

std::vector<StoredExperiment> ExperimentStore::List(pqxx::transaction_base& tx,
                                                    const ListQuery& q) {
  db::ListQuery query(absl::StrCat("SELECT ", kColumns, " FROM experiments WHERE project = $1"),
                      {q.project});
  query.Where(q.filter);
  if (q.only_ids) query.OnlyIds("experiment_id", *q.only_ids);
  if (q.after) query.After("create_time", "id", q.after->first, q.after->second, q.descending);
  return FromRows(query.Run(tx, "create_time", "id", q.descending, q.limit));
}

}  // namespace submarine::experiment
