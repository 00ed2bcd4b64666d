#pragma once
// EnvironmentManager decides everything about environment profiles: authorization (through the
// permission service, before the store is touched, so a caller without access gets
// PERMISSION_DENIED whether or not the environment exists), validation (every error names its
// field), names and projects, etags, FieldMask updates, keyset pagination, filters, AIP-155
// request-id idempotency and the events each change publishes (written to the outbox in the same
// transaction as the change). It speaks protos and absl::Status; the gRPC adapters only
// translate. Thread-safe (stateless apart from the pool and the authorizer's cache).
//
// What each method needs: Get READ on the environment; Update and Delete WRITE on it; Create
// WRITE on the parent project (which is also how a missing project is detected); List returns
// the environments the caller can READ, filtered in the store query.

#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/authz/authorizer.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::environment {

class EnvironmentManager {
 public:
  // Everything passed must outlive the manager; the pool must prepare
  // EnvironmentStore::Statements() and api::Idempotency::Statements().
  EnvironmentManager(db::ConnectionPool* pool, authz::Authorizer* authorizer,
                     const api::Idempotency* idempotency, const Clock& clock, IdGenerator& ids);

  // NOT_FOUND if absent; INVALID_ARGUMENT if `name` is malformed; PERMISSION_DENIED (present or
  // not) without READ.
  absl::StatusOr<v1::Environment> Get(const std::string& name, const rpc::CallInfo& call);
  absl::StatusOr<v1::ListEnvironmentsResponse> List(const v1::ListEnvironmentsRequest& request,
                                                    const rpc::CallInfo& call);
  // ALREADY_EXISTS if the id is taken; a repeated request_id returns the first answer.
  absl::StatusOr<v1::Environment> Create(const v1::CreateEnvironmentRequest& request,
                                         const rpc::CallInfo& call);
  // ABORTED on etag mismatch. `new_uid` regenerates the uid (Apache Submarine's PATCH does).
  absl::StatusOr<v1::Environment> Update(const v1::UpdateEnvironmentRequest& request,
                                         const rpc::CallInfo& call, bool new_uid = false);
  // Returns the environment as it was. ABORTED on etag mismatch.
  absl::StatusOr<v1::Environment> Delete(const v1::DeleteEnvironmentRequest& request,
                                         const rpc::CallInfo& call);

  // Creates the built-in profiles (notebook-env, notebook-gpu-env) the first time a schema is
  // used; never again, so a deleted built-in stays deleted.
  absl::Status SeedBuiltins();

  // The project of the built-in profiles and of the Apache Submarine face.
  static constexpr char kDefaultProject[] = "default";

 private:
  absl::StatusOr<std::string> NewUid(pqxx::work& tx);
  google::protobuf::Timestamp Now() const;

  db::ConnectionPool* pool_;
  authz::Authorizer* authz_;
  const api::Idempotency* idempotency_;
  const Clock& clock_;
  IdGenerator& ids_;
};

// Splits "projects/{p}/environments/{e}"; INVALID_ARGUMENT naming `field` if malformed.
absl::Status ParseEnvironmentName(const std::string& name, const std::string& field,
                                  std::string* project, std::string* environment_id);
// Checks an environment id ([a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?).
absl::Status ValidateEnvironmentId(const std::string& id, const std::string& field);

}  // namespace submarine::environment
