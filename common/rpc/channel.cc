#include "common/rpc/channel.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/config/config.h"
#include "common/log/log.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::rpc {
namespace {

using submarine::common::v1::Principal;
using submarine::config::v1::TlsConfig;

// The statement ActAs() leaves on a context for the signing interceptor; never sent.
constexpr char kActAsHeader[] = "x-submarine-act-as";

struct PemFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

absl::StatusOr<PemFiles> ReadPem(const TlsConfig& tls, const std::string& field) {
  PemFiles pem;
  if (tls.cert_file().empty() != tls.key_file().empty()) {
    return InvalidField(absl::StrCat(field, tls.cert_file().empty() ? ".cert_file" : ".key_file"),
                        "cert_file and key_file go together");
  }
  auto read = [&](const std::string& path, const char* name, std::string* out) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    auto text = config::ReadFile(path);
    if (!text.ok()) {
      return InvalidField(absl::StrCat(field, ".", name),
                          absl::StrCat("cannot read ", path, ": ", Message(text.status())));
    }
    *out = *std::move(text);
    return absl::OkStatus();
  };
  SUBMARINE_RETURN_IF_ERROR(read(tls.cert_file(), "cert_file", &pem.cert));
  SUBMARINE_RETURN_IF_ERROR(read(tls.key_file(), "key_file", &pem.key));
  SUBMARINE_RETURN_IF_ERROR(read(tls.ca_file(), "ca_file", &pem.ca));
  return pem;
}

struct PeerSettings {
  std::mutex mu;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  std::string server_name;  // guarded by mu
};

PeerSettings& Peer() {
  static auto* settings = new PeerSettings();
  return *settings;
}

// Signs the principal a call acts as for the method it calls (see the header).
class PrincipalSigner : public grpc::experimental::Interceptor {
 public:
  explicit PrincipalSigner(grpc::experimental::ClientRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      Sign(methods->GetSendInitialMetadata());
    }
    methods->Proceed();
  }

 private:
  void Sign(std::multimap<std::string, std::string>* md) {
    auto statement = md->find(kActAsHeader);
    if (statement == md->end()) return;
    std::string encoded = std::move(statement->second);
    md->erase(statement);
    auto bytes = auth::Base64UrlDecode(encoded);
    Principal principal;
    if (!bytes || !principal.ParseFromString(*bytes)) return;
    auto codec = GetPrincipalCodec();
    if (codec == nullptr) {
      log::Get("rpc")->error(
          "{}: no internal secret to sign the caller's identity with; the call "
          "goes out anonymous",
          info_->method());
      return;
    }
    std::string request_id;
    if (auto id = md->find(kRequestIdHeader); id != md->end()) request_id = id->second;
    auto now = std::chrono::system_clock::now();
    auto validity = auth::PrincipalCodec::kMaxValidity;
    auto deadline = info_->client_context()->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      validity =
          std::min(validity, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    }
    auto signed_headers = codec->Encode(principal, request_id, info_->method(), now, validity);
    md->emplace(kPrincipalHeader, std::move(signed_headers.principal));
    md->emplace(kPrincipalMacHeader, std::move(signed_headers.mac));
  }

  grpc::experimental::ClientRpcInfo* info_;
};

class PrincipalSignerFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new PrincipalSigner(info);
  }
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsConfig& tls, const std::string& field) {
  if (tls.cert_file().empty() && tls.key_file().empty()) {
    if (!tls.ca_file().empty()) {
      return InvalidField(absl::StrCat(field, ".cert_file"),
                          "a server needs cert_file and key_file to use ca_file");
    }
    return grpc::InsecureServerCredentials();
  }
  SUBMARINE_ASSIGN_OR_RETURN(PemFiles pem, ReadPem(tls, field));
  grpc::SslServerCredentialsOptions options(
      pem.ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                     : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pem.ca;
  options.pem_key_cert_pairs.push_back({pem.key, pem.cert});
  return grpc::SslServerCredentials(options);
}

absl::Status SetPeerTls(const TlsConfig& tls, const std::string& field) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!tls.cert_file().empty() || !tls.key_file().empty() || !tls.ca_file().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(PemFiles pem, ReadPem(tls, field));
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = pem.ca;  // empty: the system's roots
    options.pem_private_key = pem.key;
    options.pem_cert_chain = pem.cert;
    credentials = grpc::SslCredentials(options);
  }
  std::lock_guard lock(Peer().mu);
  Peer().credentials = std::move(credentials);
  Peer().server_name = tls.server_name();
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           grpc::ChannelArguments args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  {
    std::lock_guard lock(Peer().mu);
    credentials = Peer().credentials;
    if (!Peer().server_name.empty()) args.SetSslTargetNameOverride(Peer().server_name);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<PrincipalSignerFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                                 std::move(factories));
}

void ActAs(grpc::ClientContext* ctx, const Principal& principal, const std::string& request_id) {
  ctx->AddMetadata(kActAsHeader, auth::Base64UrlEncode(principal.SerializeAsString()));
  ctx->AddMetadata(kRequestIdHeader,
                   request_id.empty() ? IdGenerator::Secure().Uuid() : request_id);
}

}  // namespace submarine::rpc
