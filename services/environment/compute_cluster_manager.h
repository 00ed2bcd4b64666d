#pragma once
// ComputeClusterManager decides everything about compute clusters ("computeClusters/{id}",
// platform-level): authorization through the permission service (every enabled user may READ a
// platform resource, only administrators WRITE: AccessEvaluator), validation naming the field,
// the kind fixed by the connection, FieldMask updates, etags, keyset pagination, filters, AIP-155
// request ids, and the ComputeCluster{Created,Updated,Deleted} events written to the outbox in
// the change's transaction (the experiment service rebuilds its backends from them). The
// built-in "local" cluster is created at the first start and cannot be deleted. Thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/authz/authorizer.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"
#include "submarine/environment/v1/compute_cluster.pb.h"

namespace submarine::environment {

class ComputeClusterManager {
 public:
  static constexpr char kLocal[] = "local";

  ComputeClusterManager(db::ConnectionPool* pool, authz::Authorizer* authorizer,
                        const api::Idempotency* idempotency, const Clock& clock, IdGenerator& ids);

  absl::StatusOr<v1::ComputeCluster> Get(const std::string& name, const rpc::CallInfo& call);
  absl::StatusOr<v1::ListComputeClustersResponse> List(
      const v1::ListComputeClustersRequest& request, const rpc::CallInfo& call);
  // ALREADY_EXISTS if the id is taken; a repeated request_id returns the first answer.
  absl::StatusOr<v1::ComputeCluster> Create(const v1::CreateComputeClusterRequest& request,
                                            const rpc::CallInfo& call);
  // ABORTED on etag mismatch; INVALID_ARGUMENT for a connection of another kind.
  absl::StatusOr<v1::ComputeCluster> Update(const v1::UpdateComputeClusterRequest& request,
                                            const rpc::CallInfo& call);
  // Returns the cluster as it was. FAILED_PRECONDITION for "local"; ABORTED on etag mismatch.
  absl::StatusOr<v1::ComputeCluster> Delete(const v1::DeleteComputeClusterRequest& request,
                                            const rpc::CallInfo& call);

  // Creates "computeClusters/local" the first time a schema is used.
  absl::Status SeedLocal();

 private:
  google::protobuf::Timestamp Now() const;

  db::ConnectionPool* pool_;
  authz::Authorizer* authz_;
  const api::Idempotency* idempotency_;
  const Clock& clock_;
  IdGenerator& ids_;
};

// "computeClusters/{id}" → id; INVALID_ARGUMENT naming `field` if malformed.
absl::Status ParseComputeClusterName(const std::string& name, const std::string& field,
                                     std::string* id);
// "local", "kubernetes" or "yarn" from the connection set; "" when none is.
std::string ComputeClusterKind(const v1::ComputeCluster& cluster);

}  // namespace submarine::environment
