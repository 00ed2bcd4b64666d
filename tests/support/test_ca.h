#pragma once
// A throwaway certificate authority for TLS tests, made in-process with OpenSSL's C API: an
// ECDSA P-256 CA valid for a day that issues server certificates (for 127.0.0.1 and localhost)
// and client certificates, each written as PEM files (keys 0600) into the directory the CA was
// created in. Not thread-safe.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::testing {

class TestCa {
 public:
  // A certificate and its private key, as files.
  struct Issued {
    std::string cert_file;
    std::string key_file;
  };

  // Creates a CA called `name`; its certificate goes to dir/<name>-ca.pem.
  static absl::StatusOr<TestCa> Create(const std::string& dir, const std::string& name);

  // The CA certificate (PEM): what a peer trusts to accept what this CA issued.
  const std::string& ca_file() const { return ca_file_; }
  // A server certificate (subjectAltName IP:127.0.0.1, DNS:localhost) in dir/<name>.pem and
  // dir/<name>.key.
  absl::StatusOr<Issued> IssueServer(const std::string& name);
  // A client certificate (CN = name, extendedKeyUsage clientAuth), files as above.
  absl::StatusOr<Issued> IssueClient(const std::string& name);

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  };
  struct CertFree {
    void operator()(X509* cert) const { X509_free(cert); }
  };

  absl::StatusOr<Issued> Issue(const std::string& name, bool server);

  std::string dir_;
  std::string ca_file_;
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
  std::unique_ptr<X509, CertFree> cert_;
  long serial_ = 1;
};

}  // namespace submarine::testing
