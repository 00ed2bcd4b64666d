#pragma once
// CredentialStore owns every SQL statement of per-user credentials (table credentials of
// migrations/0003_credentials_audit.sql). The secret column only ever holds auth::Seal output;
// this class never sees plain secrets. Statements are named db::Statement constants
// ("credential.*"), prepared by the pool on every connection (Statements(),
// ConnectionPool::Options::statements), $n parameters only; methods run inside the caller's
// transaction and throw libpqxx exceptions. Times are Unix microseconds here and db::Timestamp at
// the database boundary. Stateless, thread-safe.

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/db/statement.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

// Every method takes the owner's username; "" means the platform (table platform_credentials,
// names "platform/credentials/{id}").
class CredentialStore {
 public:
  static constexpr char kPlatformParent[] = "platform";
  // "users/{u}", or "platform" for "".
  static std::string ParentOf(const std::string& username);

  // Every statement of this store; give it to the pool (ConnectionPool::Options::statements).
  static const db::StatementSet& Statements();

  // The user's flags (disabled, admin), or nullopt if there is no such user.
  struct Account {
    bool disabled = false;
    bool admin = false;
  };
  static std::optional<Account> FindAccount(pqxx::transaction_base& tx,
                                            const std::string& username);

  // Inserts or replaces (username, credential_id); `credential.name` must be set. Returns true
  // if it was new. create_time of a replaced credential is kept; `credential` gets the stored
  // create/update times.
  static bool Upsert(pqxx::work& tx, const std::string& username, const std::string& credential_id,
                     v1::Credential* credential, const std::string& sealed, int64_t now_micros);
  struct Stored {
    v1::Credential credential;  // metadata
    std::string sealed;         // nonce || ciphertext
  };
  static std::optional<Stored> Find(pqxx::transaction_base& tx, const std::string& username,
                                    const std::string& credential_id);
  // Metadata of every credential of the user, by id.
  static std::vector<v1::Credential> List(pqxx::transaction_base& tx, const std::string& username);
  // Returns whether a row was deleted.
  static bool Delete(pqxx::work& tx, const std::string& username, const std::string& credential_id);
};

}  // namespace submarine::permission
