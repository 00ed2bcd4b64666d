#pragma once
// Cryptography Submarine relies on, all from libsodium: Argon2id password hashes, Ed25519-signed
// JWTs ("alg": "EdDSA"), HMAC-SHA-256, secretbox sealing, random tokens, and key files created
// 0600 at first start. Nothing here logs a secret. Thread-safe (libsodium is initialized once).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::auth {

// sodium_init() once; aborts the process if libsodium cannot initialize.
void InitSodium();

// RFC 4648 §5 base64url without padding, and standard base64 with padding (key files).
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

// `bytes` random bytes, base64url-encoded.
std::string RandomToken(size_t bytes = 32);
// Lower-case hex SHA-256 (crypto_hash_sha256).
std::string Sha256Hex(std::string_view bytes);
// Constant-time equality (sodium_memcmp); false if lengths differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ---- Passwords: Argon2id (crypto_pwhash_str_alg with crypto_pwhash_ALG_ARGON2ID13).
struct PasswordCost {
  uint64_t ops_limit = 2;                // crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t mem_limit = 64u * 1024 * 1024;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
};
// The "$argon2id$v=19$m=...,t=...,p=1$salt$hash" string. INTERNAL if out of memory.
absl::StatusOr<std::string> HashPassword(std::string_view password, const PasswordCost& cost);
// crypto_pwhash_str_verify; false for a malformed hash.
bool VerifyPassword(std::string_view hash, std::string_view password);
// crypto_pwhash_str_needs_rehash: parameters differ from `cost`.
bool PasswordNeedsRehash(std::string_view hash, const PasswordCost& cost);

// ---- Ed25519 signing keys.
struct SigningKey {
  std::string key_id;      // "kid": first 16 hex digits of SHA-256(public_key)
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 64 bytes (libsodium format: seed || public key)
};
// A fresh key pair.
SigningKey GenerateSigningKey();
// Reads the key file (base64 of the 64-byte secret key); if it does not exist, generates a key
// and writes it atomically with mode 0600. INVALID_ARGUMENT naming the file if it is malformed.
absl::StatusOr<SigningKey> LoadOrCreateSigningKey(const std::string& path);

// ---- JWT (RFC 7519) with header {"alg":"EdDSA","typ":"JWT","kid":...}.
struct TokenClaims {
  std::string issuer;              // "iss"
  std::string subject;             // "sub": the username
  std::string token_id;            // "jti"
  std::string kind;                // "typ" claim: "access" or "api"
  std::vector<std::string> teams;  // "teams": team ids
  bool admin = false;              // "admin"
  int64_t issued_at = 0;           // "iat", Unix seconds
  int64_t expires_at = 0;          // "exp", Unix seconds; 0 = no expiry (omitted)
  std::string scope;               // "scope": "projects/{p}" the token is limited to; "" = none
};
std::string SignJwt(const TokenClaims& claims, const SigningKey& key);

// Verifies signature, issuer and expiry. Errors are UNAUTHENTICATED with reasons
// TOKEN_MALFORMED, TOKEN_UNKNOWN_KEY, TOKEN_BAD_SIGNATURE, TOKEN_WRONG_ISSUER, TOKEN_EXPIRED,
// TOKEN_NOT_YET_VALID (issued more than the leeway in the future).
// Only "alg": "EdDSA" is accepted (never "none", never HMAC). Tokens longer than 8 KiB are
// malformed. `leeway_seconds` tolerates clock skew on "exp" and "iat".
class JwtVerifier {
 public:
  // Replaces the key set: kid → 32-byte public key.
  void SetKeys(std::vector<std::pair<std::string, std::string>> keys);
  absl::StatusOr<TokenClaims> Verify(std::string_view token, std::string_view issuer,
                                     int64_t now_unix, int64_t leeway_seconds = 30) const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;
};

// ---- Symmetric keys and sealing.
// Reads a key file (base64 of exactly `bytes` bytes) or creates it (0600, atomic) with random
// content. INVALID_ARGUMENT naming the file if malformed.
absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path, size_t bytes);
// crypto_secretbox_easy with a random nonce: nonce || ciphertext. `key` is 32 bytes.
std::string Seal(std::string_view key, std::string_view plaintext);
// Opens what Seal produced; INTERNAL "cannot decrypt" if tampered or the key is wrong.
absl::StatusOr<std::string> Open(std::string_view key, std::string_view sealed);
// HMAC-SHA-256 (crypto_auth_hmacsha256), 32 raw bytes. Any key length.
std::string HmacSha256(std::string_view key, std::string_view message);

}  // namespace submarine::auth
