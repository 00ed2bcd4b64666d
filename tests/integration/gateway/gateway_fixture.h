#pragma once
// Pieces shared by the gateway integration tests: reading AIP-193 error bodies, and what a
// gateway with authentication on needs (the internal secret, a token state trusting a signing
// key, valid claims, its YAML config in front of the in-memory environment and permission
// backends).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/auth/crypto.h"
#include "submarine/permission/v1/permission.pb.h"
#include "tests/support/http_client.h"

namespace submarine::testing {

inline constexpr char kIssuer[] = "https://submarine.gateway-test";
inline constexpr char kEnvServices[] =
    "[submarine.environment.v1.EnvironmentService, "
    "submarine.environment.v1.SubmarineEnvironmentApi]";
inline constexpr char kPermServices[] =
    "[submarine.permission.v1.IdentityService, submarine.permission.v1.SubmarineAuthApi]";

int64_t NowUnix();

// The body as JSON (discarded if it does not parse).
nlohmann::json Json(const HttpResult& r);
// The single ErrorInfo of an AIP-193 error body (null if none).
nlohmann::json ErrorInfo(const nlohmann::json& body);

// The internal secret the gateway signs principals with: its value and the 0600 file holding it.
struct Secret {
  std::string value;
  std::string file;
};
Secret WriteSecret(const std::string& dir);

// A gateway config serving both backends; `auth_block` is the YAML of `auth` (may be empty), and
// `secret_file` goes to server.gateway_secret_file when not empty.
std::string AuthGatewayYaml(const std::string& env_backend, const std::string& perm_backend,
                            const std::string& auth_block, const std::string& secret_file);

// A token state trusting `key` (and revoking nothing).
submarine::permission::v1::AuthState StateTrusting(const auth::SigningKey& key);

// Claims of a valid access token of `user` (team "ml"), issued just now for 15 minutes.
auth::TokenClaims ValidClaims(const std::string& user = "alice",
                              const std::string& jti = "tok-alice");

std::vector<std::pair<std::string, std::string>> Bearer(const std::string& token);

}  // namespace submarine::testing
