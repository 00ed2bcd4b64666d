#include "clients/cli/database_provisioner.h"

#include <sys/stat.h>

#include <filesystem>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::cli {
namespace {

// DDL takes no bind parameters, so every statement is built by format() with %I (identifier) and
// %L (literal) quoting from $n parameters, then executed.
constexpr char kDatabaseExists[] = "SELECT 1 FROM pg_database WHERE datname = $1";
constexpr char kCreateDatabase[] = "SELECT format('CREATE DATABASE %I', $1::text)";
constexpr char kRevokeDatabase[] =
    "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', $1::text)";
constexpr char kRevokeConnect[] =
    "SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', datname) FROM pg_database "
    "WHERE datname IN ('postgres', 'template1')";
constexpr char kRevokePublicSchema[] = "REVOKE ALL ON SCHEMA public FROM PUBLIC";
constexpr char kRoleExists[] = "SELECT 1 FROM pg_roles WHERE rolname = $1";
constexpr char kCreateRole[] =
    "SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', "
    "$1::text, $2::text)";
constexpr char kAlterRole[] =
    "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', "
    "$1::text, $2::text)";
// A service role may connect and use the schema it owns, nothing else: no CREATE on the database
// (migrations only create a schema that does not exist yet, and the provisioner creates it).
constexpr char kGrantConnect[] =
    "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', $1::text, $2::text)";
constexpr char kRevokeCreate[] =
    "SELECT format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I', $1::text, $2::text)";
constexpr char kCreateSchema[] =
    "SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', $1::text, $2::text)";
constexpr char kSchemaOwner[] = "SELECT format('ALTER SCHEMA %I OWNER TO %I', $1::text, $2::text)";
constexpr char kSearchPath[] =
    "SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', $1::text, $2::text, "
    "$3::text)";

// Renders a statement with format() and runs it.
template <typename... Args>
void ExecFormatted(pqxx::transaction_base& tx, const char* format_query, Args&&... args) {
  pqxx::result r = tx.exec_params(format_query, std::forward<Args>(args)...);
  tx.exec(r[0][0].as<std::string>());
}

void EnsureDatabase(const db::PostgresCluster& cluster, const std::string& database) {
  pqxx::connection conn(cluster.SuperuserConnInfo("postgres"));
  pqxx::nontransaction tx(conn);  // CREATE DATABASE cannot run inside a transaction block
  if (tx.exec_params(kDatabaseExists, database).empty()) {
    ExecFormatted(tx, kCreateDatabase, database);
  }
  // Service roles connect to their own database only.
  for (const auto& row : tx.exec(kRevokeConnect)) tx.exec(row[0].as<std::string>());
}

void EnsureRoles(const db::PostgresCluster& cluster, const std::string& database,
                 const std::vector<ServiceRole>& roles, const std::vector<std::string>& passwords) {
  pqxx::connection conn(cluster.SuperuserConnInfo(database));
  pqxx::work tx(conn);
  ExecFormatted(tx, kRevokeDatabase, database);
  tx.exec(kRevokePublicSchema);
  for (size_t i = 0; i < roles.size(); ++i) {
    const ServiceRole& r = roles[i];
    bool exists = !tx.exec_params(kRoleExists, r.role).empty();
    ExecFormatted(tx, exists ? kAlterRole : kCreateRole, r.role, passwords[i]);
    ExecFormatted(tx, kRevokeCreate, database, r.role);
    ExecFormatted(tx, kGrantConnect, database, r.role);
    ExecFormatted(tx, kCreateSchema, r.schema, r.role);
    ExecFormatted(tx, kSchemaOwner, r.schema, r.role);
    ExecFormatted(tx, kSearchPath, r.role, database, r.schema);
  }
  tx.commit();
}

}  // namespace

absl::StatusOr<std::string> EnsurePasswordFile(const std::string& path) {
  auto existing = config::ReadSecretFile(path);
  if (existing.ok()) {
    ::chmod(path.c_str(), 0600);  // a secret stays private even if someone loosened it
    if (!existing->empty()) return *existing;
  } else if (existing.status().code() != absl::StatusCode::kNotFound) {
    return existing.status();
  }
  std::string password = IdGenerator::Secure().RandomHex(24);
  SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(path, password + "\n", 0600));
  return password;
}

absl::Status ProvisionDatabase(const db::PostgresCluster& cluster, const std::string& database,
                               const std::vector<ServiceRole>& roles) {
  std::vector<std::string> passwords;
  for (const ServiceRole& r : roles) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string password, EnsurePasswordFile(r.password_file));
    passwords.push_back(std::move(password));
  }
  try {
    EnsureDatabase(cluster, database);
    EnsureRoles(cluster, database, roles, passwords);
  } catch (const pqxx::broken_connection& e) {
    return Unavailable(absl::StrCat("cannot reach PostgreSQL: ", e.what()));
  } catch (const std::exception& e) {
    return Internal(absl::StrCat("provisioning database ", database, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace submarine::cli
