#pragma once
// CredentialServiceImpl: the gRPC adapter of per-user credentials
// (submarine.permission.v1.CredentialService) around CredentialManager; never throws.
// AccessCredentialSecret is internal_only: the gateway never routes it and the manager releases
// the secret only to a SERVICE principal acting for the owner.

#include <string>

#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/credential_manager.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::permission {

class CredentialServiceImpl final : public submarine::permission::v1::CredentialService::Service {
 public:
  // `pool` (connections prepared with CredentialStore::Prepare) and `clock` must outlive it;
  // `master_key` is the 32-byte key of config.master_key_file.
  CredentialServiceImpl(db::ConnectionPool* pool, const api::Idempotency* idempotency, std::string master_key,
                        const Clock& clock);

  grpc::Status CreateCredential(grpc::ServerContext* ctx, const v1::CreateCredentialRequest* req,
                                v1::Credential* resp) override;
  grpc::Status GetCredential(grpc::ServerContext* ctx, const v1::GetCredentialRequest* req,
                             v1::Credential* resp) override;
  grpc::Status ListCredentials(grpc::ServerContext* ctx, const v1::ListCredentialsRequest* req,
                               v1::ListCredentialsResponse* resp) override;
  grpc::Status DeleteCredential(grpc::ServerContext* ctx, const v1::DeleteCredentialRequest* req,
                                v1::DeleteCredentialResponse* resp) override;
  grpc::Status AccessCredentialSecret(grpc::ServerContext* ctx,
                                      const v1::AccessCredentialSecretRequest* req,
                                      v1::AccessCredentialSecretResponse* resp) override;

 private:
  CredentialManager manager_;
};

}  // namespace submarine::permission
