// common/auth/crypto: every primitive checked against libsodium's own functions or published
// test vectors, plus the refusals a token verifier must make.
#include "common/auth/crypto.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/process.h"

namespace submarine::auth {
namespace {

const unsigned char* U(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

TEST(Base64Url, RoundTripsAndRefusesGarbage) {
  std::string bytes("\x00\xff\xfe?>/+", 7);
  std::string text = Base64UrlEncode(bytes);
  EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(Base64UrlDecode(text), bytes);
  EXPECT_FALSE(Base64UrlDecode("a+b/").has_value());
  EXPECT_FALSE(Base64UrlDecode("abc$").has_value());
  EXPECT_EQ(Base64Decode(Base64Encode("hello")), "hello");
}

TEST(Password, IsArgon2idWithTheConfiguredCostAndVerifiesWithLibsodium) {
  PasswordCost cost{crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
  auto hash = HashPassword("correct horse battery staple", cost);
  ASSERT_TRUE(hash.ok()) << Message(hash.status());
  // The encoded parameters are the ones asked for: Argon2id v1.3, 64 MiB, 2 passes.
  EXPECT_EQ(hash->rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0), 0u) << *hash;
  // libsodium's own verifier accepts it, and rejects a wrong password.
  EXPECT_EQ(crypto_pwhash_str_verify(hash->c_str(), "correct horse battery staple", 28), 0);
  EXPECT_NE(crypto_pwhash_str_verify(hash->c_str(), "Correct horse battery staple", 28), 0);
  EXPECT_TRUE(VerifyPassword(*hash, "correct horse battery staple"));
  EXPECT_FALSE(VerifyPassword(*hash, "correct horse battery stapl"));
  EXPECT_FALSE(PasswordNeedsRehash(*hash, cost));
  EXPECT_TRUE(PasswordNeedsRehash(*hash, PasswordCost{3, cost.mem_limit}));
  // Two hashes of one password differ (random salt).
  auto again = HashPassword("correct horse battery staple", cost);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*hash, *again);
}

TEST(Password, HashMadeByLibsodiumVerifies) {
  char out[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(out, "pw-123456789", 12, crypto_pwhash_OPSLIMIT_MIN, 8192 * 1024,
                                  crypto_pwhash_ALG_ARGON2ID13),
            0);
  EXPECT_TRUE(VerifyPassword(out, "pw-123456789"));
  EXPECT_FALSE(VerifyPassword("", "pw"));
  EXPECT_FALSE(VerifyPassword("$argon2id$garbage", "pw"));
}

TokenClaims Claims(int64_t now) {
  TokenClaims c;
  c.issuer = "submarine";
  c.subject = "alice";
  c.token_id = "tok-1";
  c.kind = "access";
  c.teams = {"ml", "vision"};
  c.admin = false;
  c.issued_at = now;
  c.expires_at = now + 900;
  return c;
}

JwtVerifier VerifierFor(const SigningKey& key) {
  JwtVerifier v;
  v.SetKeys({{key.key_id, key.public_key}});
  return v;
}

TEST(Jwt, SignatureVerifiesWithLibsodiumAndClaimsRoundTrip) {
  SigningKey key = GenerateSigningKey();
  const int64_t now = 1'800'000'000;
  std::string token = SignJwt(Claims(now), key);
  size_t dot2 = token.rfind('.');
  auto sig = Base64UrlDecode(token.substr(dot2 + 1));
  ASSERT_TRUE(sig.has_value());
  ASSERT_EQ(sig->size(), crypto_sign_BYTES);
  // Ed25519 over "<header>.<payload>", checked by libsodium itself.
  EXPECT_EQ(crypto_sign_verify_detached(U(*sig), U(token), dot2, U(key.public_key)), 0);
  auto header = nlohmann::json::parse(*Base64UrlDecode(token.substr(0, token.find('.'))));
  EXPECT_EQ(header["alg"], "EdDSA");
  EXPECT_EQ(header["kid"], key.key_id);

  auto claims = VerifierFor(key).Verify(token, "submarine", now + 10);
  ASSERT_TRUE(claims.ok()) << Message(claims.status());
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->token_id, "tok-1");
  EXPECT_EQ(claims->kind, "access");
  EXPECT_EQ(claims->teams, (std::vector<std::string>{"ml", "vision"}));
  EXPECT_EQ(claims->expires_at, now + 900);
}

TEST(Jwt, RefusesTamperedExpiredForeignAndUnsignedTokens) {
  SigningKey key = GenerateSigningKey();
  const int64_t now = 1'800'000'000;
  JwtVerifier verifier = VerifierFor(key);
  std::string token = SignJwt(Claims(now), key);
  size_t dot1 = token.find('.'), dot2 = token.rfind('.');

  // Payload edited (admin: true), signature kept.
  auto body = nlohmann::json::parse(*Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1)));
  body["admin"] = true;
  std::string tampered =
      absl::StrCat(token.substr(0, dot1), ".", Base64UrlEncode(body.dump()), token.substr(dot2));
  EXPECT_EQ(submarine::testing::ErrorReason(verifier.Verify(tampered, "submarine", now).status()),
            "TOKEN_BAD_SIGNATURE");

  // One signature bit flipped.
  std::string flipped = token;
  flipped[dot2 + 3] = flipped[dot2 + 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(submarine::testing::ErrorReason(verifier.Verify(flipped, "submarine", now).status()),
            "TOKEN_BAD_SIGNATURE");

  // Expired (beyond the leeway), wrong issuer.
  EXPECT_EQ(
      submarine::testing::ErrorReason(verifier.Verify(token, "submarine", now + 900 + 31).status()),
      "TOKEN_EXPIRED");
  EXPECT_TRUE(verifier.Verify(token, "submarine", now + 900 + 29).ok());
  EXPECT_EQ(submarine::testing::ErrorReason(verifier.Verify(token, "other", now).status()),
            "TOKEN_WRONG_ISSUER");

  // Signed by another key with the same kid, or with a kid nobody knows.
  SigningKey other = GenerateSigningKey();
  other.key_id = key.key_id;
  EXPECT_EQ(submarine::testing::ErrorReason(
                verifier.Verify(SignJwt(Claims(now), other), "submarine", now).status()),
            "TOKEN_BAD_SIGNATURE");
  EXPECT_EQ(
      submarine::testing::ErrorReason(
          verifier.Verify(SignJwt(Claims(now), GenerateSigningKey()), "submarine", now).status()),
      "TOKEN_UNKNOWN_KEY");

  // alg "none" and HS256 (signed with the public key as HMAC secret: the classic confusion).
  std::string payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string none =
      absl::StrCat(Base64UrlEncode(R"({"alg":"none","typ":"JWT"})"), ".", payload, ".");
  EXPECT_EQ(submarine::testing::ErrorReason(verifier.Verify(none, "submarine", now).status()),
            "TOKEN_MALFORMED");
  std::string hs_input = absl::StrCat(
      Base64UrlEncode(absl::StrCat(R"({"alg":"HS256","typ":"JWT","kid":")", key.key_id, "\"}")),
      ".", payload);
  std::string hs =
      absl::StrCat(hs_input, ".", Base64UrlEncode(HmacSha256(key.public_key, hs_input)));
  EXPECT_EQ(submarine::testing::ErrorReason(verifier.Verify(hs, "submarine", now).status()),
            "TOKEN_MALFORMED");

  for (std::string bad : {std::string(""), std::string("abc"), std::string("a.b.c.d"),
                          std::string(9000, 'a'), std::string("..")}) {
    auto st = verifier.Verify(bad, "submarine", now).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << bad.substr(0, 20);
  }
}

TEST(Jwt, ApiTokensWithoutExpiryVerify) {
  SigningKey key = GenerateSigningKey();
  TokenClaims c = Claims(1000);
  c.kind = "api";
  c.expires_at = 0;
  std::string token = SignJwt(c, key);
  EXPECT_EQ(nlohmann::json::parse(*Base64UrlDecode(token.substr(
                                      token.find('.') + 1, token.rfind('.') - token.find('.') - 1)))
                .count("exp"),
            0u);
  auto claims = VerifierFor(key).Verify(token, "submarine", 4'000'000'000);
  ASSERT_TRUE(claims.ok()) << Message(claims.status());
  EXPECT_EQ(claims->kind, "api");
}

TEST(Keys, CreatedOnceWithMode0600AndReloaded) {
  std::string dir = submarine::testing::MakeTempDir("keys");
  std::string path = dir + "/signing.key";
  auto first = LoadOrCreateSigningKey(path);
  ASSERT_TRUE(first.ok()) << Message(first.status());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = LoadOrCreateSigningKey(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->public_key, second->public_key);
  EXPECT_EQ(first->key_id, second->key_id);
  // The public key matches libsodium's derivation from the secret key.
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(pk.data()), U(first->secret_key));
  EXPECT_EQ(pk, first->public_key);

  std::ofstream(dir + "/bad.key") << "not base64!!\n";
  auto bad = LoadOrCreateSigningKey(dir + "/bad.key");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(bad.status()).find("bad.key"), std::string::npos);

  auto master = LoadOrCreateKeyFile(dir + "/master.key", 32);
  ASSERT_TRUE(master.ok());
  EXPECT_EQ(master->size(), 32u);
  EXPECT_EQ(*LoadOrCreateKeyFile(dir + "/master.key", 32), *master);
  EXPECT_FALSE(LoadOrCreateKeyFile(dir + "/master.key", 64).ok());
}

TEST(Secretbox, SealsOpensAndDetectsTampering) {
  std::string key(32, '\0');
  randombytes_buf(key.data(), key.size());
  std::string sealed = Seal(key, "ghp_secret-token");
  EXPECT_EQ(sealed.find("ghp_secret"), std::string::npos);
  EXPECT_EQ(*Open(key, sealed), "ghp_secret-token");
  EXPECT_NE(Seal(key, "ghp_secret-token"), sealed);  // fresh nonce each time
  std::string tampered = sealed;
  tampered.back() ^= 1;
  EXPECT_EQ(Open(key, tampered).status().code(), absl::StatusCode::kInternal);
  std::string other(32, 'k');
  EXPECT_EQ(Open(other, sealed).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Open(key, "short").status().code(), absl::StatusCode::kInternal);
  // libsodium opens what Seal wrote (nonce first).
  std::string plain(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  EXPECT_EQ(
      crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                 U(sealed) + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, U(sealed), U(key)),
      0);
  EXPECT_EQ(plain, "ghp_secret-token");
}

TEST(Hmac, MatchesRfc4231TestCase2) {
  std::string mac = HmacSha256("Jefe", "what do ya want for nothing?");
  char hex[65];
  sodium_bin2hex(hex, sizeof(hex), U(mac), mac.size());
  EXPECT_STREQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace submarine::auth
