#include "tests/integration/gateway/gateway_fixture.h"

#include <gtest/gtest.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"

namespace submarine::testing {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json Json(const HttpResult& r) { return nlohmann::json::parse(r.body, nullptr, false); }

nlohmann::json ErrorInfo(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("error")) return nlohmann::json();
  for (const auto& d : body["error"]["details"]) {
    if (d.value("@type", "") == "type.googleapis.com/google.rpc.ErrorInfo") return d;
  }
  return nlohmann::json();
}

Secret WriteSecret(const std::string& dir) {
  Secret s{auth::RandomToken(36), absl::StrCat(dir, "/gateway.secret")};
  auto st = config::WriteFileAtomic(s.file, s.value, 0600);
  EXPECT_TRUE(st.ok()) << st;
  return s;
}

std::string AuthGatewayYaml(const std::string& env_backend, const std::string& perm_backend,
                            const std::string& auth_block, const std::string& secret_file) {
  std::string yaml = absl::StrCat(
      "http_listen: 127.0.0.1:0\n", "grpc_listen: 127.0.0.1:0\n", "request_timeout_ms: 5000\n",
      "backends:\n", "  - address: ", env_backend, "\n", "    services: ", kEnvServices, "\n",
      "  - address: ", perm_backend, "\n", "    services: ", kPermServices, "\n", auth_block,
      "server:\n", "  shutdown_grace_ms: 5000\n");
  if (!secret_file.empty()) absl::StrAppend(&yaml, "  gateway_secret_file: ", secret_file, "\n");
  return yaml;
}

submarine::permission::v1::AuthState StateTrusting(const auth::SigningKey& key) {
  submarine::permission::v1::AuthState state;
  state.set_issuer(kIssuer);
  auto* k = state.add_signing_keys();
  k->set_key_id(key.key_id);
  k->set_public_key(key.public_key);
  return state;
}

auth::TokenClaims ValidClaims(const std::string& user, const std::string& jti) {
  auth::TokenClaims c;
  c.issuer = kIssuer;
  c.subject = user;
  c.token_id = jti;
  c.kind = "access";
  c.teams = {"ml"};
  c.issued_at = NowUnix() - 5;
  c.expires_at = NowUnix() + 900;
  return c;
}

std::vector<std::pair<std::string, std::string>> Bearer(const std::string& token) {
  return {{"Authorization", absl::StrCat("Bearer ", token)}};
}

}  // namespace submarine::testing
