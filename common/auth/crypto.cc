#include "common/auth/crypto.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::auth {
namespace {

constexpr size_t kMaxTokenBytes = 8192;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

std::string Encode(std::string_view bytes, int variant) {
  if (bytes.empty()) return "";
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), U(bytes), bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> Decode(std::string_view text, int variant) {
  if (text.empty()) return std::string();
  std::string out(text.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(U(out), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

absl::Status TokenError(const std::string& reason, const std::string& message) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason, message);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Publishes `text` at `path` (0600) only if nothing is there yet: written to a temporary file
// first, then hard-linked into place, which fails if another process got there first. Either
// way the caller then reads the file, so concurrent first starts agree on one key.
absl::Status CreateKeyFileOnce(const std::string& path, std::string text) {
  std::string tmp = absl::StrCat(path, ".new.", ::getpid());
  absl::Status written = config::WriteFileAtomic(tmp, text, 0600);
  sodium_memzero(text.data(), text.size());
  SUBMARINE_RETURN_IF_ERROR(written);
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST) {
    return Internal(absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path, size_t bytes) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, config::ReadSecretFile(path));
  auto raw = Base64Decode(text);
  sodium_memzero(text.data(), text.size());
  if (!raw || raw->size() != bytes) {
    return InvalidField(path, absl::StrCat("must hold base64 of exactly ", bytes, " bytes"));
  }
  return *raw;
}

}  // namespace

void InitSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

std::string Base64UrlEncode(std::string_view bytes) {
  InitSodium();
  return Encode(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
std::optional<std::string> Base64UrlDecode(std::string_view text) {
  InitSodium();
  return Decode(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
std::string Base64Encode(std::string_view bytes) {
  InitSodium();
  return Encode(bytes, sodium_base64_VARIANT_ORIGINAL);
}
std::optional<std::string> Base64Decode(std::string_view text) {
  InitSodium();
  return Decode(text, sodium_base64_VARIANT_ORIGINAL);
}

std::string RandomToken(size_t bytes) {
  InitSodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return Base64UrlEncode(raw);
}

std::string Sha256Hex(std::string_view bytes) {
  InitSodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, U(bytes), bytes.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return std::string(hex);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  InitSodium();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<std::string> HashPassword(std::string_view password, const PasswordCost& cost) {
  InitSodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost.ops_limit, cost.mem_limit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Internal("cannot hash the password (out of memory?)");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  InitSodium();
  // crypto_pwhash_str_verify needs a NUL-terminated string of at most STRBYTES - 1.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

bool PasswordNeedsRehash(std::string_view hash, const PasswordCost& cost) {
  InitSodium();
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return true;
  std::string h(hash);
  return crypto_pwhash_str_needs_rehash(h.c_str(), cost.ops_limit, cost.mem_limit) != 0;
}

namespace {
SigningKey FromSecretKey(std::string secret_key) {
  SigningKey key;
  key.public_key.resize(crypto_sign_PUBLICKEYBYTES);
  crypto_sign_ed25519_sk_to_pk(U(key.public_key), U(secret_key));
  key.secret_key = std::move(secret_key);
  key.key_id = Sha256Hex(key.public_key).substr(0, 16);
  return key;
}
}  // namespace

SigningKey GenerateSigningKey() {
  InitSodium();
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  std::string sk(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_keypair(U(pk), U(sk));
  return FromSecretKey(std::move(sk));
}

absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path, size_t bytes) {
  InitSodium();
  if (path.empty()) return InvalidField("key file", "no path configured");
  if (!FileExists(path)) {
    std::string raw(bytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    SUBMARINE_RETURN_IF_ERROR(CreateKeyFileOnce(path, Base64Encode(raw) + "\n"));
    sodium_memzero(raw.data(), raw.size());
  }
  return ReadKeyFile(path, bytes);
}

absl::StatusOr<SigningKey> LoadOrCreateSigningKey(const std::string& path) {
  InitSodium();
  if (path.empty()) return InvalidField("signing key file", "no path configured");
  if (!FileExists(path)) {
    SigningKey fresh = GenerateSigningKey();
    SUBMARINE_RETURN_IF_ERROR(CreateKeyFileOnce(path, Base64Encode(fresh.secret_key) + "\n"));
    sodium_memzero(fresh.secret_key.data(), fresh.secret_key.size());
  }
  SUBMARINE_ASSIGN_OR_RETURN(std::string sk, ReadKeyFile(path, crypto_sign_SECRETKEYBYTES));
  // A key file written by someone else must still be a consistent libsodium key: the public half
  // it carries must be derived from its seed.
  std::string seed = sk.substr(0, crypto_sign_SEEDBYTES);
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk2(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(U(pk), U(sk2), U(seed));
  sodium_memzero(seed.data(), seed.size());
  bool consistent = ConstantTimeEquals(sk, sk2);
  sodium_memzero(sk2.data(), sk2.size());
  if (!consistent) return InvalidField(path, "is not an Ed25519 secret key");
  return FromSecretKey(std::move(sk));
}

std::string SignJwt(const TokenClaims& claims, const SigningKey& key) {
  InitSodium();
  nlohmann::json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", key.key_id}};
  nlohmann::json body = {{"iss", claims.issuer},   {"sub", claims.subject},
                         {"jti", claims.token_id}, {"typ", claims.kind},
                         {"teams", claims.teams},  {"admin", claims.admin},
                         {"iat", claims.issued_at}};
  if (claims.expires_at != 0) body["exp"] = claims.expires_at;
  if (!claims.scope.empty()) body["scope"] = claims.scope;
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(body.dump()));
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(U(sig), nullptr, U(signing_input), signing_input.size(), U(key.secret_key));
  return absl::StrCat(signing_input, ".", Base64UrlEncode(sig));
}

void JwtVerifier::SetKeys(std::vector<std::pair<std::string, std::string>> keys) {
  keys_ = std::move(keys);
}

absl::StatusOr<TokenClaims> JwtVerifier::Verify(std::string_view token, std::string_view issuer,
                                                int64_t now_unix, int64_t leeway_seconds) const {
  InitSodium();
  if (token.empty() || token.size() > kMaxTokenBytes) {
    return TokenError("TOKEN_MALFORMED", "the token is not a well-formed JWT");
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return TokenError("TOKEN_MALFORMED", "the token is not a well-formed JWT");
  }
  auto header_bytes = Base64UrlDecode(token.substr(0, dot1));
  auto body_bytes = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto sig = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_bytes || !body_bytes || !sig) {
    return TokenError("TOKEN_MALFORMED", "the token is not a well-formed JWT");
  }
  nlohmann::json header = nlohmann::json::parse(*header_bytes, nullptr, false);
  nlohmann::json body = nlohmann::json::parse(*body_bytes, nullptr, false);
  if (!header.is_object() || !body.is_object()) {
    return TokenError("TOKEN_MALFORMED", "the token is not a well-formed JWT");
  }
  // Only EdDSA: a token claiming "none" or an HMAC algorithm is refused before anything else.
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || *alg != "EdDSA") {
    return TokenError("TOKEN_MALFORMED", "the token's algorithm must be EdDSA");
  }
  auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string()) {
    return TokenError("TOKEN_UNKNOWN_KEY", "the token names no signing key");
  }
  const std::string* public_key = nullptr;
  for (const auto& [id, pk] : keys_) {
    if (id == kid->get<std::string>()) public_key = &pk;
  }
  if (public_key == nullptr || public_key->size() != crypto_sign_PUBLICKEYBYTES) {
    return TokenError("TOKEN_UNKNOWN_KEY", "the token was signed with an unknown key");
  }
  if (sig->size() != crypto_sign_BYTES ||
      crypto_sign_verify_detached(U(*sig), U(token), dot2, U(*public_key)) != 0) {
    return TokenError("TOKEN_BAD_SIGNATURE", "the token's signature is not valid");
  }
  TokenClaims claims;
  try {
    claims.issuer = body.value("iss", "");
    claims.subject = body.value("sub", "");
    claims.token_id = body.value("jti", "");
    claims.kind = body.value("typ", "");
    claims.admin = body.value("admin", false);
    claims.issued_at = body.value("iat", int64_t{0});
    claims.expires_at = body.value("exp", int64_t{0});
    claims.scope = body.value("scope", "");
    if (auto t = body.find("teams"); t != body.end()) {
      claims.teams = t->get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception&) {
    return TokenError("TOKEN_MALFORMED", "the token's claims have the wrong types");
  }
  if (claims.subject.empty() || claims.token_id.empty()) {
    return TokenError("TOKEN_MALFORMED", "the token has no subject or id");
  }
  if (claims.issuer != issuer) {
    return TokenError("TOKEN_WRONG_ISSUER", "the token was issued by someone else");
  }
  if (claims.expires_at != 0 && now_unix >= claims.expires_at + leeway_seconds) {
    return TokenError("TOKEN_EXPIRED", "the token has expired; log in again");
  }
  if (claims.issued_at > now_unix + leeway_seconds) {
    return TokenError("TOKEN_NOT_YET_VALID",
                      "the token's issue time is in the future; check the clocks of this machine "
                      "and of the permission service");
  }
  return claims;
}

std::string Seal(std::string_view key, std::string_view plaintext) {
  InitSodium();
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  randombytes_buf(out.data(), crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(U(out) + crypto_secretbox_NONCEBYTES, U(plaintext), plaintext.size(),
                        U(out), U(key));
  return out;
}

absl::StatusOr<std::string> Open(std::string_view key, std::string_view sealed) {
  InitSodium();
  if (key.size() != crypto_secretbox_KEYBYTES ||
      sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return Internal("cannot decrypt");
  }
  std::string out(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(U(out), U(sealed) + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, U(sealed),
                                 U(key)) != 0) {
    return Internal("cannot decrypt");
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  InitSodium();
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, U(key), key.size());
  crypto_auth_hmacsha256_update(&state, U(message), message.size());
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&state, U(out));
  return out;
}

}  // namespace submarine::auth
