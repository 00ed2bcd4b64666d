#pragma once
// The permission service as the service kit runs it: its spec and the build function that makes
// its domain on the host — keys, the first-start bootstrap, the identity, access, quota,
// credential and audit faces, the event consumers of every service (audit log and grant
// clean-up, audit_log.h), the project-holdings check and its housekeeping (lapsed leases,
// expired tokens).

#include <vector>

#include "absl/status/status.h"
#include "common/db/migrations.h"
#include "common/rpc/service_host.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::permission {

// The service's migrations (services/permission/migrations), embedded at build time.
std::vector<db::Migration> PermissionMigrations();

rpc::ServiceSpec Spec();

// INVALID_ARGUMENT naming the field without signing_key_file, master_key_file or
// admin_password_file (common.server.gateway_secret_file is required by the host: the
// permission service authorizes nothing itself, so it never runs without the secret).
absl::Status Build(rpc::ServiceHost& host,
                   const submarine::config::v1::PermissionServiceConfig& config);

}  // namespace submarine::permission
