#pragma once
// Gives every service of the local stack its own login role and schema in one database of the
// embedded PostgreSQL cluster. Idempotent: run at every start.
//
// For each ServiceRole: the password is read from `password_file`, or generated (48 hex
// characters from the CSPRNG) and written there with mode 0600 on first use; the role is created
// (LOGIN, no other attributes) or its password reset to the file's; the schema is created owned by
// the role; the role's search_path in the database is its schema. Database-wide: PUBLIC loses
// every privilege on the database and on schema `public` (and CONNECT on `postgres` and
// `template1`), and each role gets CONNECT and CREATE (see kGrantConnect) on its database only, so
// a role can touch only its own schema (and schemas it creates itself).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/db/postgres_cluster.h"

namespace submarine::cli {

struct ServiceRole {
  std::string role;
  std::string schema;
  std::string password_file;
};

// Connects as the cluster's superuser over its unix socket. UNAVAILABLE if the cluster cannot be
// reached, INTERNAL on any other SQL failure.
absl::Status ProvisionDatabase(const db::PostgresCluster& cluster, const std::string& database,
                               const std::vector<ServiceRole>& roles);

// Returns the password stored in `path`, creating it (0600) with a fresh random one if missing.
absl::StatusOr<std::string> EnsurePasswordFile(const std::string& path);

}  // namespace submarine::cli
