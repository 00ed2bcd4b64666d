#include "services/permission/credential_service.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

constexpr char kDomain[] = "permission.submarine.io";

using rpc::Fill;

}  // namespace

CredentialServiceImpl::CredentialServiceImpl(db::ConnectionPool* pool,
                                             const api::Idempotency* idempotency,
                                             std::string master_key, const Clock& clock)
    : manager_(pool, idempotency, std::move(master_key), clock) {}

grpc::Status CredentialServiceImpl::CreateCredential(grpc::ServerContext* ctx,
                                                     const v1::CreateCredentialRequest* req,
                                                     v1::Credential* resp) {
  return rpc::HandleCall(
      *ctx, kDomain, [&](const rpc::CallInfo& s) { return Fill(manager_.Create(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::GetCredential(grpc::ServerContext* ctx,
                                                  const v1::GetCredentialRequest* req,
                                                  v1::Credential* resp) {
  return rpc::HandleCall(*ctx, kDomain,
                         [&](const rpc::CallInfo& s) { return Fill(manager_.Get(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::ListCredentials(grpc::ServerContext* ctx,
                                                    const v1::ListCredentialsRequest* req,
                                                    v1::ListCredentialsResponse* resp) {
  return rpc::HandleCall(
      *ctx, kDomain, [&](const rpc::CallInfo& s) { return Fill(manager_.List(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::DeleteCredential(grpc::ServerContext* ctx,
                                                     const v1::DeleteCredentialRequest* req,
                                                     v1::DeleteCredentialResponse*) {
  return rpc::HandleCall(*ctx, kDomain,
                         [&](const rpc::CallInfo& s) { return manager_.Delete(*req, s); });
}

grpc::Status CredentialServiceImpl::AccessCredentialSecret(
    grpc::ServerContext* ctx, const v1::AccessCredentialSecretRequest* req,
    v1::AccessCredentialSecretResponse* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.AccessSecret(*req, s), resp);
  });
}

}  // namespace submarine::permission
