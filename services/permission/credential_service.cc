#include "services/permission/credential_service.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

constexpr char kDomain[] = "permission.submarine.io";

// Runs `body` with the call's scope, turning a status or any escaped exception into the answer.
// Exception texts are not echoed: they could quote request bytes, and requests carry secrets.
template <class F>
grpc::Status Handle(grpc::ServerContext* ctx, F&& body) {
  rpc::CallScope scope(*ctx);
  try {
    return ToGrpcStatus(body(scope), kDomain);
  } catch (const std::exception&) {
    return ToGrpcStatus(Internal("unexpected error handling a credential"), kDomain);
  }
}

template <class T>
absl::Status Fill(absl::StatusOr<T> result, T* resp) {
  if (!result.ok()) return result.status();
  *resp = *std::move(result);
  return absl::OkStatus();
}

}  // namespace

CredentialServiceImpl::CredentialServiceImpl(db::ConnectionPool* pool, std::string master_key,
                                             const Clock& clock)
    : manager_(pool, std::move(master_key), clock) {}

grpc::Status CredentialServiceImpl::CreateCredential(grpc::ServerContext* ctx,
                                                     const v1::CreateCredentialRequest* req,
                                                     v1::Credential* resp) {
  return Handle(ctx, [&](const rpc::CallScope& s) { return Fill(manager_.Create(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::GetCredential(grpc::ServerContext* ctx,
                                                  const v1::GetCredentialRequest* req,
                                                  v1::Credential* resp) {
  return Handle(ctx, [&](const rpc::CallScope& s) { return Fill(manager_.Get(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::ListCredentials(grpc::ServerContext* ctx,
                                                    const v1::ListCredentialsRequest* req,
                                                    v1::ListCredentialsResponse* resp) {
  return Handle(ctx, [&](const rpc::CallScope& s) { return Fill(manager_.List(*req, s), resp); });
}

grpc::Status CredentialServiceImpl::DeleteCredential(grpc::ServerContext* ctx,
                                                     const v1::DeleteCredentialRequest* req,
                                                     v1::DeleteCredentialResponse*) {
  return Handle(ctx, [&](const rpc::CallScope& s) { return manager_.Delete(*req, s); });
}

grpc::Status CredentialServiceImpl::AccessCredentialSecret(
    grpc::ServerContext* ctx, const v1::AccessCredentialSecretRequest* req,
    v1::AccessCredentialSecretResponse* resp) {
  return Handle(
      ctx, [&](const rpc::CallScope& s) { return Fill(manager_.AccessSecret(*req, s), resp); });
}

}  // namespace submarine::permission
