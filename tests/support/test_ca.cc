#include "tests/support/test_ca.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::testing {
namespace {

std::string OpenSslError(const std::string& what) {
  char buf[256] = {};
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return absl::StrCat(what, ": ", buf);
}

EVP_PKEY* NewKey() { return EVP_EC_gen("P-256"); }

// Adds one X.509v3 extension in openssl.cnf syntax, e.g. ("basicConstraints", "critical,CA:TRUE").
bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// An unsigned certificate for `key` named CN=`name`, valid from a minute ago for a day.
X509* NewCert(EVP_PKEY* key, const std::string& name, long serial) {
  X509* cert = X509_new();
  if (cert == nullptr) return nullptr;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  return cert;
}

absl::Status WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Internal(absl::StrCat("cannot write ", path));
  bool ok = cert != nullptr
                ? PEM_write_X509(f, cert) == 1
                : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (key != nullptr) ::chmod(path.c_str(), 0600);
  if (!ok) return Internal(OpenSslError(absl::StrCat("cannot write ", path)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir, const std::string& name) {
  TestCa ca;
  ca.dir_ = dir;
  ca.ca_file_ = absl::StrCat(dir, "/", name, "-ca.pem");
  ca.key_.reset(NewKey());
  if (ca.key_ == nullptr) return Internal(OpenSslError("cannot generate the CA key"));
  ca.cert_.reset(NewCert(ca.key_.get(), name, ca.serial_++));
  X509* cert = ca.cert_.get();
  if (cert == nullptr || X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
      !AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
      !AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(cert, cert, NID_subject_key_identifier, "hash") ||
      X509_sign(cert, ca.key_.get(), EVP_sha256()) == 0) {
    return Internal(OpenSslError("cannot make the CA certificate"));
  }
  SUBMARINE_RETURN_IF_ERROR(WritePem(ca.ca_file_, cert, nullptr));
  return ca;
}

absl::StatusOr<TestCa::Issued> TestCa::IssueServer(const std::string& name) {
  return Issue(name, true);
}

absl::StatusOr<TestCa::Issued> TestCa::IssueClient(const std::string& name) {
  return Issue(name, false);
}

absl::StatusOr<TestCa::Issued> TestCa::Issue(const std::string& name, bool server) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(NewKey());
  if (key == nullptr) return Internal(OpenSslError("cannot generate a key"));
  std::unique_ptr<X509, CertFree> cert(NewCert(key.get(), name, serial_++));
  X509* c = cert.get();
  if (c == nullptr || X509_set_issuer_name(c, X509_get_subject_name(cert_.get())) != 1 ||
      !AddExtension(c, cert_.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(c, cert_.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(c, cert_.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth") ||
      !AddExtension(c, cert_.get(), NID_authority_key_identifier, "keyid:always") ||
      (server &&
       !AddExtension(c, cert_.get(), NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost")) ||
      X509_sign(c, key_.get(), EVP_sha256()) == 0) {
    return Internal(OpenSslError(absl::StrCat("cannot issue a certificate for ", name)));
  }
  Issued issued{absl::StrCat(dir_, "/", name, ".pem"), absl::StrCat(dir_, "/", name, ".key")};
  SUBMARINE_RETURN_IF_ERROR(WritePem(issued.cert_file, c, nullptr));
  SUBMARINE_RETURN_IF_ERROR(WritePem(issued.key_file, nullptr, key.get()));
  return issued;
}

}  // namespace submarine::testing
