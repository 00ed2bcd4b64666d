#include "services/environment/compute_cluster_store.h"

#include <cstring>

#include "absl/strings/match.h"
#include "common/api/labels.h"
#include "common/db/pool.h"

namespace submarine::environment {
namespace {

using v1::ComputeCluster;

constexpr db::Statement kClusterFind{"compute_cluster.find",
                                     "SELECT id, body FROM compute_clusters WHERE cluster_id = $1"};
constexpr db::Statement kClusterFindForUpdate{
    "compute_cluster.find_for_update",
    "SELECT id, body FROM compute_clusters WHERE cluster_id = $1 FOR UPDATE"};
constexpr db::Statement kClusterInsert{
    "compute_cluster.insert",
    "INSERT INTO compute_clusters (cluster_id, kind, display_name, labels, body, etag, "
    "create_time, update_time) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8) RETURNING id"};
constexpr db::Statement kClusterUpdate{
    "compute_cluster.update",
    "UPDATE compute_clusters SET display_name = $2, labels = $3::jsonb, body = $4, etag = $5, "
    "update_time = $6 WHERE id = $1"};
constexpr db::Statement kClusterDelete{"compute_cluster.delete",
                                       "DELETE FROM compute_clusters WHERE id = $1"};

// The list statement is assembled from this fixed fragment and $n placeholders only.
constexpr char kClusterListSelect[] = "SELECT id, body FROM compute_clusters WHERE true";

StoredComputeCluster ClusterFromRow(const pqxx::row& row) {
  StoredComputeCluster s;
  s.id = row[0].as<int64_t>();
  pqxx::binarystring body(row[1]);
  s.cluster.ParseFromString(body.str());
  return s;
}

}  // namespace

const db::StatementSet& ComputeClusterStore::Statements() {
  static const auto* set = new db::StatementSet{kClusterFind, kClusterFindForUpdate, kClusterInsert,
                                                kClusterUpdate, kClusterDelete};
  return *set;
}

std::optional<StoredComputeCluster> ComputeClusterStore::Find(pqxx::transaction_base& tx,
                                                              const std::string& cluster_id,
                                                              bool for_update) {
  auto r = db::Exec(tx, for_update ? kClusterFindForUpdate : kClusterFind, cluster_id);
  if (r.empty()) return std::nullopt;
  return ClusterFromRow(r[0]);
}

int64_t ComputeClusterStore::Insert(pqxx::work& tx, const std::string& cluster_id,
                                    const ComputeCluster& c) {
  std::string body = c.SerializeAsString();
  auto r = db::Exec(tx, kClusterInsert, cluster_id, c.kind(), c.display_name(),
                    api::LabelsJson(c.labels()), pqxx::binarystring(body), c.etag(),
                    db::Timestamp::FromProto(c.create_time()),
                    db::Timestamp::FromProto(c.update_time()));
  return r[0][0].as<int64_t>();
}

void ComputeClusterStore::Update(pqxx::work& tx, int64_t id, const ComputeCluster& c) {
  std::string body = c.SerializeAsString();
  db::Exec(tx, kClusterUpdate, id, c.display_name(), api::LabelsJson(c.labels()),
           pqxx::binarystring(body), c.etag(), db::Timestamp::FromProto(c.update_time()));
}

void ComputeClusterStore::Delete(pqxx::work& tx, int64_t id) { db::Exec(tx, kClusterDelete, id); }

api::FilterFields ComputeClusterStore::FilterFields() {
  return api::WithResourceFields({
      {.name = "name",
       .sql = "cluster_id",
       .normalize =
           [](const std::string& v) {
             constexpr char kNamePrefix[] = "computeClusters/";
             return absl::StartsWith(v, kNamePrefix) ? v.substr(strlen(kNamePrefix)) : v;
           }},
      {.name = "display_name", .sql = "display_name", .aliases = {"displayName"}},
      {.name = "kind",
       .type = api::FilterType::kEnum,
       .sql = "kind",
       .values = {"local", "kubernetes", "yarn"}},
  });
}

std::vector<StoredComputeCluster> ComputeClusterStore::List(pqxx::transaction_base& tx,
                                                            const ComputeClusterQuery& q) {
  db::ListQuery query(kClusterListSelect, {});
  query.Where(q.filter);
  if (q.after) query.After("create_time", "id", q.after->first, q.after->second, false);
  std::vector<StoredComputeCluster> out;
  for (const auto& row : query.Run(tx, "create_time", "id", false, q.limit)) {
    out.push_back(ClusterFromRow(row));
  }
  return out;
}

}  // namespace submarine::environment
