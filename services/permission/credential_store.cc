#include "services/permission/credential_store.h"

#include "absl/strings/str_cat.h"

namespace submarine::permission {
namespace {

using v1::Credential;

constexpr db::Statement kFindAccount{"credential.find_account",
                                     "SELECT disabled, admin FROM users WHERE username = $1"};
// xmax = 0 only on a freshly inserted row: tells CREATED from UPDATED.
constexpr db::Statement kUpsert{
    "credential.upsert",
    "INSERT INTO credentials (username, credential_id, type, description, sealed, create_time, "
    "update_time) VALUES ($1, $2, $3, $4, $5, $6, $6) "
    "ON CONFLICT (username, credential_id) DO UPDATE SET type = EXCLUDED.type, "
    "description = EXCLUDED.description, sealed = EXCLUDED.sealed, "
    "update_time = EXCLUDED.update_time "
    "RETURNING (xmax = 0), create_time"};
// Find and List return the metadata columns FromRow reads; Find adds the sealed secret.
constexpr db::Statement kFind{
    "credential.find",
    "SELECT credential_id, type, description, create_time, update_time, sealed "
    "FROM credentials WHERE username = $1 AND credential_id = $2"};
constexpr db::Statement kList{"credential.list",
                              "SELECT credential_id, type, description, create_time, update_time "
                              "FROM credentials WHERE username = $1 ORDER BY credential_id"};
constexpr db::Statement kDelete{
    "credential.delete", "DELETE FROM credentials WHERE username = $1 AND credential_id = $2"};
// The same over platform_credentials (no owner column).
constexpr db::Statement kPlatformUpsert{
    "credential.platform_upsert",
    "INSERT INTO platform_credentials (credential_id, type, description, sealed, create_time, "
    "update_time) VALUES ($1, $2, $3, $4, $5, $5) "
    "ON CONFLICT (credential_id) DO UPDATE SET type = EXCLUDED.type, "
    "description = EXCLUDED.description, sealed = EXCLUDED.sealed, "
    "update_time = EXCLUDED.update_time "
    "RETURNING (xmax = 0), create_time"};
constexpr db::Statement kPlatformFind{
    "credential.platform_find",
    "SELECT credential_id, type, description, create_time, update_time, sealed "
    "FROM platform_credentials WHERE credential_id = $1"};
constexpr db::Statement kPlatformList{
    "credential.platform_list",
    "SELECT credential_id, type, description, create_time, update_time "
    "FROM platform_credentials ORDER BY credential_id"};
constexpr db::Statement kPlatformDelete{
    "credential.platform_delete", "DELETE FROM platform_credentials WHERE credential_id = $1"};

Credential FromRow(const std::string& username, const pqxx::row& row) {
  Credential c;
  c.set_name(
      absl::StrCat(CredentialStore::ParentOf(username), "/credentials/", row[0].as<std::string>()));
  c.set_type(row[1].as<std::string>());
  c.set_description(row[2].as<std::string>());
  *c.mutable_create_time() = row[3].as<db::Timestamp>().ToProto();
  *c.mutable_update_time() = row[4].as<db::Timestamp>().ToProto();
  return c;
}

}  // namespace

std::string CredentialStore::ParentOf(const std::string& username) {
  return username.empty() ? std::string(kPlatformParent) : absl::StrCat("users/", username);
}

const db::StatementSet& CredentialStore::Statements() {
  static const auto* set =
      new db::StatementSet{kFindAccount,    kUpsert,       kFind,         kList,          kDelete,
                           kPlatformUpsert, kPlatformFind, kPlatformList, kPlatformDelete};
  return *set;
}

std::optional<CredentialStore::Account> CredentialStore::FindAccount(pqxx::transaction_base& tx,
                                                                     const std::string& username) {
  auto r = db::Exec(tx, kFindAccount, username);
  if (r.empty()) return std::nullopt;
  return Account{r[0][0].as<bool>(), r[0][1].as<bool>()};
}

bool CredentialStore::Upsert(pqxx::work& tx, const std::string& username,
                             const std::string& credential_id, Credential* credential,
                             const std::string& sealed, int64_t now_micros) {
  auto r = username.empty() ? db::Exec(tx, kPlatformUpsert, credential_id, credential->type(),
                                       credential->description(), pqxx::binarystring(sealed),
                                       db::Timestamp{now_micros})
                            : db::Exec(tx, kUpsert, username, credential_id, credential->type(),
                                       credential->description(), pqxx::binarystring(sealed),
                                       db::Timestamp{now_micros});
  *credential->mutable_create_time() = r[0][1].as<db::Timestamp>().ToProto();
  *credential->mutable_update_time() = db::Timestamp{now_micros}.ToProto();
  return r[0][0].as<bool>();
}

std::optional<CredentialStore::Stored> CredentialStore::Find(pqxx::transaction_base& tx,
                                                             const std::string& username,
                                                             const std::string& credential_id) {
  auto r = username.empty() ? db::Exec(tx, kPlatformFind, credential_id)
                            : db::Exec(tx, kFind, username, credential_id);
  if (r.empty()) return std::nullopt;
  Stored s;
  s.credential = FromRow(username, r[0]);
  s.sealed = pqxx::binarystring(r[0][5]).str();
  return s;
}

std::vector<Credential> CredentialStore::List(pqxx::transaction_base& tx,
                                              const std::string& username) {
  auto r = username.empty() ? db::Exec(tx, kPlatformList) : db::Exec(tx, kList, username);
  std::vector<Credential> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(FromRow(username, row));
  return out;
}

bool CredentialStore::Delete(pqxx::work& tx, const std::string& username,
                             const std::string& credential_id) {
  auto r = username.empty() ? db::Exec(tx, kPlatformDelete, credential_id)
                            : db::Exec(tx, kDelete, username, credential_id);
  return r.affected_rows() > 0;
}

}  // namespace submarine::permission
