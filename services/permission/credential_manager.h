#pragma once
// CredentialManager decides everything about per-user credentials (git tokens, object-store
// keys, Kerberos keytabs): validation (every error names its field), who may manage them (the
// user, directly or through a service acting for them, and platform admins, a service acting for
// itself included: Caller::MayManageUser, access_evaluator.h), sealing with the master key
// (libsodium secretbox: the plain secret is never stored) and the CredentialChanged /
// CredentialAccessed events. Create/Get/List/Delete never return the secret; only
// AccessCredentialSecret does, and only to a SERVICE principal acting for the credential's owner
// (Caller::ReceivesSecretsOf) — never to a USER principal, the owner and admins included, nor to
// a service acting for itself. Thread-safe (stateless apart from the pool).

#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class CredentialManager {
 public:
  // Largest secret accepted.
  static constexpr size_t kMaxSecretBytes = 64 * 1024;

  // `pool` (connections prepared with CredentialStore::Prepare) and `clock` must outlive it.
  // `master_key` is the 32-byte secretbox key; with any other size every call fails INTERNAL.
  CredentialManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, std::string master_key,
                    const Clock& clock);

  // Creates or replaces the credential (CREATED or UPDATED event).
  absl::StatusOr<v1::Credential> Create(const v1::CreateCredentialRequest& request,
                                        const rpc::CallInfo& call);
  absl::StatusOr<v1::Credential> Get(const v1::GetCredentialRequest& request,
                                     const rpc::CallInfo& call);
  absl::StatusOr<v1::ListCredentialsResponse> List(const v1::ListCredentialsRequest& request,
                                                   const rpc::CallInfo& call);
  absl::Status Delete(const v1::DeleteCredentialRequest& request, const rpc::CallInfo& call);
  // INTERNAL (reason CREDENTIAL_UNREADABLE) if the sealed secret does not open under the master
  // key (e.g. the key file was replaced); nothing of the secret is returned or logged then.
  absl::StatusOr<v1::AccessCredentialSecretResponse> AccessSecret(
      const v1::AccessCredentialSecretRequest& request, const rpc::CallInfo& call);

 private:
  absl::Status CheckKey() const;
  int64_t NowMicros() const;

  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  std::string master_key_;
  const Clock& clock_;
};

}  // namespace submarine::permission
