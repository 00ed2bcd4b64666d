#include "services/permission/credential_store.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;
using v1::Credential;

constexpr char kFindAccount[] = "credential_find_account";
constexpr char kUpsert[] = "credential_upsert";
constexpr char kFind[] = "credential_find";
constexpr char kList[] = "credential_list";
constexpr char kDelete[] = "credential_delete";

constexpr char kFindAccountSql[] = "SELECT disabled, admin FROM users WHERE username = $1";
// xmax = 0 only on a freshly inserted row: tells CREATED from UPDATED.
constexpr char kUpsertSql[] =
    "INSERT INTO credentials (username, credential_id, type, description, sealed, create_time, "
    "update_time) VALUES ($1, $2, $3, $4, $5, "
    "TIMESTAMPTZ 'epoch' + $6::bigint * INTERVAL '1 microsecond', "
    "TIMESTAMPTZ 'epoch' + $6::bigint * INTERVAL '1 microsecond') "
    "ON CONFLICT (username, credential_id) DO UPDATE SET type = EXCLUDED.type, "
    "description = EXCLUDED.description, sealed = EXCLUDED.sealed, "
    "update_time = EXCLUDED.update_time "
    "RETURNING (xmax = 0), (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint";
constexpr char kMetadataColumns[] =
    "credential_id, type, description, (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint, "
    "(EXTRACT(EPOCH FROM update_time) * 1000000)::bigint";
constexpr char kDeleteSql[] = "DELETE FROM credentials WHERE username = $1 AND credential_id = $2";

Credential FromRow(const std::string& username, const pqxx::row& row) {
  Credential c;
  c.set_name(absl::StrCat("users/", username, "/credentials/", row[0].as<std::string>()));
  c.set_type(row[1].as<std::string>());
  c.set_description(row[2].as<std::string>());
  *c.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(row[3].as<int64_t>());
  *c.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(row[4].as<int64_t>());
  return c;
}

}  // namespace

void CredentialStore::Prepare(pqxx::connection& conn) {
  conn.prepare(kFindAccount, kFindAccountSql);
  conn.prepare(kUpsert, kUpsertSql);
  conn.prepare(kFind, absl::StrCat("SELECT ", kMetadataColumns,
                                   ", sealed FROM credentials WHERE username = $1 AND "
                                   "credential_id = $2"));
  conn.prepare(kList, absl::StrCat("SELECT ", kMetadataColumns,
                                   " FROM credentials WHERE username = $1 ORDER BY credential_id"));
  conn.prepare(kDelete, kDeleteSql);
}

std::optional<CredentialStore::Account> CredentialStore::FindAccount(pqxx::transaction_base& tx,
                                                                     const std::string& username) {
  auto r = tx.exec_prepared(kFindAccount, username);
  if (r.empty()) return std::nullopt;
  return Account{r[0][0].as<bool>(), r[0][1].as<bool>()};
}

bool CredentialStore::Upsert(pqxx::work& tx, const std::string& username,
                             const std::string& credential_id, Credential* credential,
                             const std::string& sealed, int64_t now_micros) {
  auto r = tx.exec_prepared(kUpsert, username, credential_id, credential->type(),
                            credential->description(), pqxx::binarystring(sealed), now_micros);
  *credential->mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r[0][1].as<int64_t>());
  *credential->mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(now_micros);
  return r[0][0].as<bool>();
}

std::optional<CredentialStore::Stored> CredentialStore::Find(pqxx::transaction_base& tx,
                                                             const std::string& username,
                                                             const std::string& credential_id) {
  auto r = tx.exec_prepared(kFind, username, credential_id);
  if (r.empty()) return std::nullopt;
  Stored s;
  s.credential = FromRow(username, r[0]);
  s.sealed = pqxx::binarystring(r[0][5]).str();
  return s;
}

std::vector<Credential> CredentialStore::List(pqxx::transaction_base& tx,
                                              const std::string& username) {
  auto r = tx.exec_prepared(kList, username);
  std::vector<Credential> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(FromRow(username, row));
  return out;
}

bool CredentialStore::Delete(pqxx::work& tx, const std::string& username,
                             const std::string& credential_id) {
  return tx.exec_prepared(kDelete, username, credential_id).affected_rows() > 0;
}

}  // namespace submarine::permission
