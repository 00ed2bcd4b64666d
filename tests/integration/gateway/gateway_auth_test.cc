// Authentication in the real submarine-gateway process, in front of an in-memory environment
// backend and an in-memory permission service (PermissionBackend) whose token state the test
// controls, with permission events sent on a ZeroMQ PUB socket standing in for the bus: which
// routes need a token, every way a token can be wrong, the principal the services receive,
// forged principal headers, the gRPC proxy, internal-only methods, readiness and how fast a
// revocation reaches the gateway. The same flows against the real permission service live in
// gateway_permission_test.cc.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/crypto.h"
#include "common/auth/principal.h"
#include "common/config/config.h"
#include "common/events/wire.h"
#include "common/rpc/call_context.h"
#include "common/net/address.h"
#include "common/status/status.h"
#include "gateway/auth_state.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "tests/integration/gateway/environment_backend.h"
#include "tests/integration/gateway/gateway_fixture.h"
#include "tests/integration/gateway/permission_backend.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace submarine::testing {
namespace {

using nlohmann::json;
using submarine::common::v1::Principal;
namespace env = submarine::environment::v1;
namespace perm = submarine::permission::v1;

constexpr char kOpenApiGeneratorUa[] = "OpenAPI-Generator/0.9.0-SNAPSHOT/python";

// The bus as far as the gateway can tell: a PUB socket its SUB socket connects to, signing like
// the permission service's relay with the internal secret. Used from the test thread only.
class FakeBus {
 public:
  explicit FakeBus(const std::string& secret)
      : socket_(events::ProcessContext(), zmq::socket_type::pub), key_(secret, "permission") {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  void Publish(const std::string& type, const google::protobuf::Message& payload) {
    submarine::common::v1::Event event;
    event.set_topic(absl::StrCat("submarine.permission.v1.", type));
    event.mutable_header()->set_publisher("permission");
    event.mutable_header()->set_seq(++seq_);
    event.mutable_header()->set_event_id(absl::StrCat("event-", seq_));
    event.set_payload(payload.SerializeAsString());
    events::SendEvent(socket_, event, key_);
  }

 private:
  zmq::socket_t socket_;
  events::EventKey key_;
  std::string endpoint_;
  uint64_t seq_ = 0;
};

class GatewayAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auth::InitSodium();
    dir_ = new std::string(MakeTempDir("gateway-auth"));
    secret_ = new Secret(WriteSecret(*dir_));
    key_ = new auth::SigningKey(auth::GenerateSigningKey());
    perm_ = new PermissionBackend(secret_->value);
    perm_->SetState(BaseState());
    auto perm_address = perm_->Start();
    ASSERT_TRUE(perm_address.ok()) << perm_address.status();
    env_ = new EnvironmentBackend();
    auto env_address = env_->Start();
    ASSERT_TRUE(env_address.ok()) << env_address.status();
    bus_ = new FakeBus(secret_->value);
    ready_ = new ReadyInfo();
    std::string auth_block =
        absl::StrCat("auth: {address: \"", *perm_address, "\", subscribe_endpoint: \"",
                     bus_->endpoint(), "\", cache_ttl_ms: 600000}\n");
    auto child = StartService(
        "submarine-gateway", *dir_, "gateway",
        AuthGatewayYaml(*env_address, *perm_address, auth_block, secret_->file), ready_);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = new ChildProcess(std::move(child).value());
    ASSERT_TRUE(WaitFor([] {
      auto r = HttpCall(ready_->http, "GET", "/readyz");
      return r.ok() && r->status == 200;
    })) << Tail(absl::StrCat(*dir_, "/gateway.log"));
  }

  static void TearDownTestSuite() {
    if (gateway_ != nullptr) {
      gateway_->Signal(SIGTERM);
      EXPECT_EQ(gateway_->Wait(), 0);
    }
    delete gateway_;
    delete bus_;
    delete env_;
    delete perm_;
    delete key_;
    delete secret_;
    delete ready_;
    delete dir_;
  }

  void SetUp() override { ASSERT_NE(gateway_, nullptr) << "the gateway did not start"; }

  static perm::AuthState BaseState() { return StateTrusting(*key_); }

  static auth::TokenClaims Claims(const std::string& user = "alice",
                                  const std::string& jti = "tok-alice") {
    return ValidClaims(user, jti);
  }

  static std::string Token(const auth::TokenClaims& claims) { return auth::SignJwt(claims, *key_); }

  static HttpResult Call(const std::string& method, const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& body = "") {
    auto r = HttpCall(ready_->http, method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResult();
  }

  // Publishes `type` until the gateway has fetched the state again: proves the watcher's
  // subscription is live (a PUB socket drops what it sends before a subscriber has joined).
  static void PrimeBus() {
    bool fetched = false;
    for (int i = 0; i < 50 && !fetched; ++i) {
      int before = perm_->auth_state_calls();
      bus_->Publish("UserChanged", perm::UserChanged());
      fetched = WaitFor([&] { return perm_->auth_state_calls() > before; },
                        std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(fetched) << "the gateway never reacted to a permission event";
  }

  // The principal the environment backend received on its last call, verified with the secret.
  static absl::StatusOr<Principal> ReceivedPrincipal(int* principal_headers = nullptr) {
    auto md = env_->last_metadata();
    if (principal_headers != nullptr) {
      *principal_headers = static_cast<int>(md.count(auth::kPrincipalHeader));
    }
    auto p = md.find(auth::kPrincipalHeader);
    auto m = md.find(auth::kPrincipalMacHeader);
    auto id = md.find("x-request-id");
    if (p == md.end() || m == md.end() || id == md.end()) {
      return absl::NotFoundError("no principal was sent");
    }
    // Verified for the method it names: what these tests check is who the service was told
    // called (the method binding has its own unit test).
    auto bytes = auth::Base64UrlDecode(p->second);
    Principal claimed;
    if (!bytes || !claimed.ParseFromString(*bytes)) return absl::InvalidArgumentError("garbled");
    return auth::PrincipalCodec(secret_->value)
        .Verify(p->second, m->second, id->second, claimed.method(),
                std::chrono::system_clock::now());
  }

  static inline std::string* dir_ = nullptr;
  static inline Secret* secret_ = nullptr;
  static inline auth::SigningKey* key_ = nullptr;
  static inline PermissionBackend* perm_ = nullptr;
  static inline EnvironmentBackend* env_ = nullptr;
  static inline FakeBus* bus_ = nullptr;
  static inline ChildProcess* gateway_ = nullptr;
  static inline ReadyInfo* ready_ = nullptr;
};

TEST_F(GatewayAuthTest, BuiltInAndExemptRoutesNeedNoToken) {
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/api/openapi.json"}) {
    EXPECT_EQ(Call("GET", path).status, 200) << path;
  }
  auto login = Call("POST", "/v1/auth:login", {{"Content-Type", "application/json"}},
                    R"({"username":"alice","password":"correct horse"})");
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(Json(login)["accessToken"], "token-for-alice");
  EXPECT_FALSE(perm_->login_had_principal());
  auto v1 = Call("POST", "/api/auth/login", {{"Content-Type", "application/json"}},
                 R"({"username":"bob","password":"pw"})");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(Json(v1)["result"], "token-for-bob");
  // The OpenAPI document says so too.
  auto doc = Json(Call("GET", "/api/openapi.json"));
  EXPECT_EQ(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
  EXPECT_EQ(doc["paths"]["/v1/auth:login"]["post"]["security"], json::array());
  EXPECT_FALSE(doc["paths"]["/v1/users:me"]["get"].contains("security"));
}

TEST_F(GatewayAuthTest, MissingTokenIs401WithAChallengeAndNeverReachesTheService) {
  auto r =
      Call("GET", "/v1/projects/default/environments/anything", {{"X-Request-Id", "no-token-1"}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.Header("www-authenticate").rfind("Bearer", 0), 0u) << r.Header("www-authenticate");
  auto body = Json(r);
  EXPECT_EQ(body["error"]["code"], 401);
  EXPECT_EQ(body["error"]["status"], "UNAUTHENTICATED");
  EXPECT_EQ(ErrorInfo(body)["reason"], "UNAUTHENTICATED");
  EXPECT_NE(env_->last_request_id(), "no-token-1");
  // Not even request validation happens before authentication.
  auto bad = Call("GET", "/v1/projects/default/environments?pageSize=lots");
  EXPECT_EQ(bad.status, 401) << bad.body;
  auto me = Call("GET", "/v1/users:me");
  EXPECT_EQ(me.status, 401) << me.body;
}

TEST_F(GatewayAuthTest, SubmarineV1RoutesAnswerTheV1EnvelopeWith401) {
  for (const char* path : {"/api/v1/environment", "/api/sys/user/info"}) {
    auto r = Call("GET", path);
    EXPECT_EQ(r.status, 401) << path << ": " << r.body;
    auto body = Json(r);
    EXPECT_EQ(body["code"], 401) << r.body;
    EXPECT_EQ(body["status"], "UNAUTHORIZED") << r.body;
    EXPECT_TRUE(body["success"].is_null());
    EXPECT_EQ(r.Header("www-authenticate").rfind("Bearer", 0), 0u);
  }
}

TEST_F(GatewayAuthTest, NoUserAgentBypass) {
  std::vector<std::pair<std::string, std::string>> ua = {{"User-Agent", kOpenApiGeneratorUa}};
  for (const char* path :
       {"/api/v1/environment", "/api/sys/user/info", "/v1/projects/default/environments/x"}) {
    EXPECT_EQ(Call("GET", path, ua).status, 401) << path;
  }
}

TEST_F(GatewayAuthTest, EveryKindOfBadTokenIsRefused) {
  std::string good = Token(Claims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  auto signature = auth::Base64UrlDecode(parts[2]);
  ASSERT_TRUE(signature.has_value());
  json payload = json::parse(*auth::Base64UrlDecode(parts[1]));
  json header = json::parse(*auth::Base64UrlDecode(parts[0]));
  auto assemble = [](const json& h, const json& p, const std::string& sig) {
    return absl::StrCat(auth::Base64UrlEncode(h.dump()), ".", auth::Base64UrlEncode(p.dump()), ".",
                        auth::Base64UrlEncode(sig));
  };
  json admin_payload = payload;
  admin_payload["admin"] = true;
  auto expired = Claims();
  expired.issued_at = NowUnix() - 7200;
  expired.expires_at = NowUnix() - 3600;
  auto wrong_issuer = Claims();
  wrong_issuer.issuer = "https://elsewhere";
  auto other_key = auth::GenerateSigningKey();
  auto impostor = other_key;
  impostor.key_id = key_->key_id;
  json hs_header = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key_->key_id}};
  std::string hs_input = absl::StrCat(auth::Base64UrlEncode(hs_header.dump()), ".",
                                      auth::Base64UrlEncode(admin_payload.dump()));
  struct Case {
    std::string name;
    std::string token;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"malformed", "not-a-jwt", "TOKEN_MALFORMED"},
      {"tampered", assemble(header, admin_payload, *signature), "TOKEN_BAD_SIGNATURE"},
      {"wrong key", auth::SignJwt(Claims(), other_key), "TOKEN_UNKNOWN_KEY"},
      {"wrong key, trusted kid", auth::SignJwt(Claims(), impostor), "TOKEN_BAD_SIGNATURE"},
      {"expired", Token(expired), "TOKEN_EXPIRED"},
      {"wrong issuer", Token(wrong_issuer), "TOKEN_WRONG_ISSUER"},
      {"alg none", assemble({{"alg", "none"}, {"typ", "JWT"}}, admin_payload, ""),
       "TOKEN_MALFORMED"},
      {"HS256 with the public key",
       absl::StrCat(hs_input, ".",
                    auth::Base64UrlEncode(auth::HmacSha256(key_->public_key, hs_input))),
       "TOKEN_MALFORMED"},
  };
  for (const auto& c : cases) {
    auto r = Call("GET", "/v1/projects/default/environments/x", Bearer(c.token));
    EXPECT_EQ(r.status, 401) << c.name << ": " << r.body;
    EXPECT_EQ(ErrorInfo(Json(r))["reason"], c.reason) << c.name << ": " << r.body;
    EXPECT_NE(r.Header("www-authenticate").find("invalid_token"), std::string::npos) << c.name;
    EXPECT_EQ(r.body.find(c.token), std::string::npos) << c.name << " echoed the token";
  }
  // A token issued in the future is refused too.
  auto future = Claims();
  future.issued_at = NowUnix() + 3600;
  future.expires_at = NowUnix() + 7200;
  auto early = Call("GET", "/v1/projects/default/environments/x", Bearer(Token(future)));
  EXPECT_EQ(early.status, 401);
  EXPECT_EQ(ErrorInfo(Json(early))["reason"], "TOKEN_NOT_YET_VALID") << early.body;
  // And the good one works.
  EXPECT_EQ(Call("GET", "/v1/projects/default/environments/x", Bearer(good)).status, 404);
}

TEST_F(GatewayAuthTest, ServicesReceiveTheVerifiedPrincipalAndNeverTheClientsHeaders) {
  Principal forged;
  forged.set_kind(Principal::USER);
  forged.set_user("root");
  forged.set_admin(true);
  auto forged_headers = auth::PrincipalCodec(std::string(48, 'x'))
                            .Encode(forged, "forged-request-1",
                                    "/submarine.environment.v1.EnvironmentService/GetEnvironment",
                                    std::chrono::system_clock::now());
  auto claims = Claims();
  claims.teams = {"ml", "infra"};
  auto r = Call("GET", "/v1/projects/default/environments/missing",
                {{"Authorization", absl::StrCat("Bearer ", Token(claims))},
                 {"X-Request-Id", "forged-request-1"},
                 {"X-Submarine-Principal", forged_headers.principal},
                 {"X-Submarine-Principal-Mac", forged_headers.mac}});
  EXPECT_EQ(r.status, 404) << r.body;
  int headers = 0;
  auto principal = ReceivedPrincipal(&headers);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(headers, 1);
  EXPECT_EQ(principal->kind(), Principal::USER);
  EXPECT_EQ(principal->user(), "alice");
  EXPECT_FALSE(principal->admin());
  EXPECT_EQ(principal->token_id(), "tok-alice");
  EXPECT_EQ(std::vector<std::string>(principal->teams().begin(), principal->teams().end()),
            (std::vector<std::string>{"ml", "infra"}));
  auto md = env_->last_metadata();
  EXPECT_EQ(md.count("authorization"), 0u);
  EXPECT_EQ(md.count(auth::kPrincipalMacHeader), 1u);

  // The forged headers alone get nowhere.
  auto forged_only = Call("GET", "/v1/projects/default/environments/missing",
                          {{"X-Request-Id", "forged-request-2"},
                           {"X-Submarine-Principal", forged_headers.principal},
                           {"X-Submarine-Principal-Mac", forged_headers.mac}});
  EXPECT_EQ(forged_only.status, 401);
  EXPECT_NE(env_->last_request_id(), "forged-request-2");
}

TEST_F(GatewayAuthTest, GrpcProxyAuthenticatesAndAttachesThePrincipal) {
  auto channel = grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials());
  auto environments = env::EnvironmentService::NewStub(channel);
  auto identity = perm::IdentityService::NewStub(channel);
  env::GetEnvironmentRequest get;
  get.set_name("projects/default/environments/missing");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "grpc-no-token");
    env::Environment resp;
    grpc::Status st = environments->GetEnvironment(&ctx, get, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
    EXPECT_EQ(ErrorReason(st), "UNAUTHENTICATED");
    EXPECT_NE(env_->last_request_id(), "grpc-no-token");
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer not-a-jwt");
    ctx.AddMetadata("user-agent", kOpenApiGeneratorUa);
    env::Environment resp;
    grpc::Status st = environments->GetEnvironment(&ctx, get, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(ErrorReason(st), "TOKEN_MALFORMED");
    EXPECT_EQ(st.error_message().find("not-a-jwt"), std::string::npos);
  }
  {
    Principal forged;
    forged.set_kind(Principal::SERVICE);
    forged.set_service("experiment");
    auto headers = auth::PrincipalCodec(std::string(48, 'y'))
                       .Encode(forged, "grpc-ok",
                               "/submarine.environment.v1.EnvironmentService/GetEnvironment",
                               std::chrono::system_clock::now());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", Token(Claims())));
    ctx.AddMetadata("x-request-id", "grpc-ok");
    ctx.AddMetadata(auth::kPrincipalHeader, headers.principal);
    ctx.AddMetadata(auth::kPrincipalMacHeader, headers.mac);
    env::Environment resp;
    grpc::Status st = environments->GetEnvironment(&ctx, get, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    int count = 0;
    auto principal = ReceivedPrincipal(&count);
    ASSERT_TRUE(principal.ok()) << principal.status();
    EXPECT_EQ(count, 1);
    EXPECT_EQ(principal->kind(), Principal::USER);
    EXPECT_EQ(principal->user(), "alice");
    auto md = env_->last_metadata();
    EXPECT_EQ(md.count("authorization"), 0u);
    EXPECT_EQ(md.count(auth::kPrincipalMacHeader), 1u);
  }
  {
    // The permission service itself sees the same verified principal.
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", Token(Claims("bob", "tok-bob"))));
    perm::User user;
    grpc::Status st = identity->GetCurrentUser(&ctx, perm::GetCurrentUserRequest(), &user);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(user.name(), "users/bob");
  }
  {
    // Exempt: no token needed, and no principal sent.
    grpc::ClientContext ctx;
    perm::LoginRequest req;
    req.set_username("carol");
    perm::LoginResponse resp;
    grpc::Status st = identity->Login(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.access_token(), "token-for-carol");
    EXPECT_FALSE(perm_->login_had_principal());
  }
}

TEST_F(GatewayAuthTest, InternalOnlyMethodsAreNeverRouted) {
  auto channel = grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials());
  auto identity = perm::IdentityService::NewStub(channel);
  int rejected_before = perm_->rejected_principals();
  for (bool with_token : {false, true}) {
    grpc::ClientContext ctx;
    if (with_token) {
      auto claims = Claims("root", "tok-root");
      claims.admin = true;
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", Token(claims)));
    }
    perm::AuthState state;
    grpc::Status st = identity->GetAuthState(&ctx, perm::GetAuthStateRequest(), &state);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_EQ(ErrorReason(st), "INTERNAL_ONLY");
    EXPECT_EQ(state.signing_keys_size(), 0);
  }
  // Refused by the gateway itself: the permission service never saw the calls.
  EXPECT_EQ(perm_->rejected_principals(), rejected_before);
  // No REST route either: the OpenAPI document does not mention it.
  auto doc = Call("GET", "/api/openapi.json");
  EXPECT_EQ(doc.body.find("GetAuthState"), std::string::npos);
}

// Readiness detail (backend addresses, gRPC's words for what is wrong) is for platform admins;
// everyone else learns only whether the gateway is ready.
TEST_F(GatewayAuthTest, ReadyzDetailIsForAdminsOnly) {
  auto admin = Claims("root", "tok-root");
  admin.admin = true;
  const std::string kMalformed = "gateway_auth_failures_total{reason=\"TOKEN_MALFORMED\"} ";
  auto malformed_failures = [&] {
    std::string m = Call("GET", "/metrics").body;
    size_t at = m.find(kMalformed);
    return at == std::string::npos ? 0 : std::atoll(m.c_str() + at + kMalformed.size());
  };
  const long long failures_before = malformed_failures();
  for (const auto& headers : {std::vector<std::pair<std::string, std::string>>{},
                              Bearer(Token(Claims())), Bearer("not-a-jwt")}) {
    auto r = Call("GET", "/readyz", headers);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"status":"ok"})");
  }
  auto detail = Call("GET", "/readyz", Bearer(Token(admin)));
  ASSERT_EQ(detail.status, 200) << detail.body;
  auto body = Json(detail);
  EXPECT_EQ(body["authentication"], "on");
  ASSERT_EQ(body["backends"].size(), 2u) << detail.body;
  EXPECT_EQ(body["backends"][0]["serving"], true);
  EXPECT_FALSE(body["backends"][0]["address"].get<std::string>().empty());
  // A public endpoint shown a bad token is not an authentication failure.
  EXPECT_EQ(malformed_failures(), failures_before);
  auto metrics = Call("GET", "/metrics").body;
  for (const char* service :
       {"submarine.environment.v1.EnvironmentService", "submarine.permission.v1.IdentityService"}) {
    EXPECT_NE(metrics.find(absl::StrCat("gateway_backend_ready{service=\"", service, "\"} 1\n")),
              std::string::npos)
        << service;
  }
}

TEST_F(GatewayAuthTest, TheGatewayFetchesTheStateAsAServicePrincipal) {
  EXPECT_GE(perm_->auth_state_calls(), 1);
  EXPECT_EQ(perm_->last_caller().kind(), Principal::SERVICE);
  EXPECT_EQ(perm_->last_caller().service(), "gateway");
}

TEST_F(GatewayAuthTest, RevokedTokenIsRefusedWithinSeconds) {
  auto claims = Claims("dave", "tok-dave-api");
  claims.kind = "api";
  claims.expires_at = 0;
  std::string token = Token(claims);
  ASSERT_EQ(Call("GET", "/v1/projects/default/environments/x", Bearer(token)).status, 404);
  PrimeBus();

  auto revoked_state = perm_->state();
  revoked_state.add_revoked_tokens()->set_token_id("tok-dave-api");
  perm_->SetState(revoked_state);
  auto start = std::chrono::steady_clock::now();
  perm::TokenRevoked event;
  event.set_token_id("tok-dave-api");
  event.set_user("users/dave");
  bus_->Publish("TokenRevoked", event);
  HttpResult last;
  ASSERT_TRUE(WaitFor(
      [&] {
        last = Call("GET", "/v1/projects/default/environments/x", Bearer(token));
        return last.status == 401;
      },
      std::chrono::seconds(10)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(ErrorInfo(Json(last))["reason"], "TOKEN_REVOKED");
  std::printf("revocation reached the gateway in %.0f ms\n",
              std::chrono::duration<double, std::milli>(took).count());
  // Other tokens still work.
  EXPECT_EQ(Call("GET", "/v1/projects/default/environments/x", Bearer(Token(Claims()))).status,
            404);
}

TEST_F(GatewayAuthTest, DisabledUserIsRefusedAfterTheEvent) {
  std::string token = Token(Claims("erin", "tok-erin"));
  ASSERT_EQ(Call("GET", "/v1/projects/default/environments/x", Bearer(token)).status, 404);
  PrimeBus();
  auto state = perm_->state();
  state.add_blocked_users("erin");
  perm_->SetState(state);
  perm::UserChanged event;
  event.mutable_user()->set_name("users/erin");
  event.mutable_user()->set_disabled(true);
  event.set_change(perm::UPDATED);
  bus_->Publish("UserChanged", event);
  HttpResult last;
  ASSERT_TRUE(WaitFor([&] {
    last = Call("GET", "/v1/projects/default/environments/x", Bearer(token));
    return last.status == 401;
  }));
  EXPECT_EQ(ErrorInfo(Json(last))["reason"], "USER_DISABLED");
}

// ---- Separate gateway processes.

TEST(GatewayAuthConfigTest, RefusesToStartWithoutAuthConfigNamingTheKey) {
  std::string dir = MakeTempDir("gateway-auth-config");
  Secret secret = WriteSecret(dir);
  ReadyInfo ready;
  auto none = StartService("submarine-gateway", dir, "no-auth",
                           AuthGatewayYaml("127.0.0.1:1", "127.0.0.1:2", "", ""), &ready);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("auth.address"), absl::string_view::npos) << none.status();
  auto no_secret = StartService(
      "submarine-gateway", dir, "no-secret",
      AuthGatewayYaml("127.0.0.1:1", "127.0.0.1:2", "auth: {address: \"127.0.0.1:2\"}\n", ""),
      &ready);
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.status().message().find("server.gateway_secret_file"),
            absl::string_view::npos)
      << no_secret.status();
  auto short_secret_file = absl::StrCat(dir, "/short.secret");
  ASSERT_TRUE(config::WriteFileAtomic(short_secret_file, "too-short", 0600).ok());
  auto short_secret =
      StartService("submarine-gateway", dir, "short-secret",
                   AuthGatewayYaml("127.0.0.1:1", "127.0.0.1:2",
                                   "auth: {address: \"127.0.0.1:2\"}\n", short_secret_file),
                   &ready);
  ASSERT_FALSE(short_secret.ok());
  EXPECT_NE(short_secret.status().message().find(short_secret_file), absl::string_view::npos)
      << short_secret.status();
}

TEST(GatewayAuthReadinessTest, NotReadyUntilTheTokenStateIsLoaded) {
  auth::InitSodium();
  std::string dir = MakeTempDir("gateway-auth-ready");
  Secret secret = WriteSecret(dir);
  auto key = auth::GenerateSigningKey();
  PermissionBackend perm(secret.value);
  perm::AuthState state = StateTrusting(key);
  perm.SetState(state);
  perm.SetRefusing(true);
  auto perm_address = perm.Start();
  ASSERT_TRUE(perm_address.ok());
  EnvironmentBackend env;
  auto env_address = env.Start();
  ASSERT_TRUE(env_address.ok());
  ReadyInfo ready;
  auto gateway = StartService(
      "submarine-gateway", dir, "gateway",
      AuthGatewayYaml(*env_address, *perm_address,
                      absl::StrCat("auth: {address: \"", *perm_address, "\"}\n"), secret.file),
      &ready);
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  auto bearer = Bearer(auth::SignJwt(ValidClaims("alice", "t"), key));
  auto readyz = HttpCall(ready.http, "GET", "/readyz");
  ASSERT_TRUE(readyz.ok());
  EXPECT_EQ(readyz->status, 503) << readyz->body;
  EXPECT_EQ(ErrorInfo(Json(*readyz))["reason"], "AUTH_STATE_UNAVAILABLE") << readyz->body;
  auto call = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x", "", bearer);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->status, 503) << call->body;
  EXPECT_EQ(ErrorInfo(Json(*call))["reason"], "AUTH_STATE_UNAVAILABLE");
  EXPECT_EQ(HttpCall(ready.http, "GET", "/healthz")->status, 200);

  perm.SetRefusing(false);
  EXPECT_TRUE(WaitFor([&] {
    auto r = HttpCall(ready.http, "GET", "/readyz");
    return r.ok() && r->status == 200;
  }));
  auto after = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x", "", bearer);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, 404) << after->body;
  gateway->Signal(SIGTERM);
  EXPECT_EQ(gateway->Wait(), 0);
}

// A backend that is down: anonymous callers learn that the gateway is not ready, and REST and
// gRPC callers that the service is unavailable, but never its address or gRPC's words for what
// went wrong (the gateway logs those with the request id); an admin sees the detail.
TEST(GatewayAuthReadinessTest, ADownBackendsAddressReachesOnlyAdminsAndTheLog) {
  auth::InitSodium();
  std::string dir = MakeTempDir("gateway-auth-down");
  Secret secret = WriteSecret(dir);
  auto key = auth::GenerateSigningKey();
  PermissionBackend perm(secret.value);
  perm.SetState(StateTrusting(key));
  auto perm_address = perm.Start();
  ASSERT_TRUE(perm_address.ok());
  auto port = net::PickFreePort();
  ASSERT_TRUE(port.ok());
  const std::string down = absl::StrCat("127.0.0.1:", *port);
  ReadyInfo ready;
  auto gateway = StartService(
      "submarine-gateway", dir, "gateway",
      AuthGatewayYaml(down, *perm_address,
                      absl::StrCat("auth: {address: \"", *perm_address, "\"}\n"), secret.file),
      &ready);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpResult anonymous;
  ASSERT_TRUE(WaitFor([&] {
    auto r = HttpCall(ready.http, "GET", "/readyz");
    if (r.ok()) anonymous = *r;
    return r.ok() && ErrorInfo(Json(*r))["reason"] == "BACKEND_NOT_SERVING";
  })) << anonymous.body;
  EXPECT_EQ(anonymous.status, 503);
  EXPECT_EQ(Json(anonymous)["error"]["status"], "UNAVAILABLE");
  EXPECT_EQ(anonymous.body.find(down), std::string::npos) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("127.0.0.1"), std::string::npos) << anonymous.body;
  auto user = Bearer(auth::SignJwt(ValidClaims("alice", "t"), key));
  auto admin_claims = ValidClaims("root", "r");
  admin_claims.admin = true;
  auto admin = HttpCall(ready.http, "GET", "/readyz", "", Bearer(auth::SignJwt(admin_claims, key)));
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 503);
  EXPECT_NE(admin->body.find(down), std::string::npos) << admin->body;

  auto call = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x", "", user);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->status, 503) << call->body;
  auto info = ErrorInfo(Json(*call));
  EXPECT_EQ(info["reason"], "BACKEND_UNAVAILABLE");
  EXPECT_EQ(info["metadata"]["service"], "submarine.environment.v1.EnvironmentService");
  EXPECT_EQ(call->body.find(down), std::string::npos) << call->body;
  EXPECT_EQ(call->body.find("127.0.0.1"), std::string::npos) << call->body;
  std::string request_id = call->Header("x-request-id");
  std::string log = Tail(absl::StrCat(dir, "/gateway.log"), 1 << 20);
  bool logged = false;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(log, '\n'))) {
    logged = logged ||
             (line.find(request_id) != std::string::npos && line.find(down) != std::string::npos);
  }
  EXPECT_TRUE(logged) << "no log line with the request id and the backend address:\n" << log;

  auto channel = grpc::CreateChannel(ready.grpc, grpc::InsecureChannelCredentials());
  auto stub = env::EnvironmentService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", user[0].second);
  env::GetEnvironmentRequest req;
  req.set_name("projects/default/environments/x");
  env::Environment resp;
  grpc::Status st = stub->GetEnvironment(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ErrorReason(st), "BACKEND_UNAVAILABLE");
  EXPECT_EQ(st.error_message().find("127.0.0.1"), std::string::npos) << st.error_message();

  auto metrics = HttpCall(ready.http, "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find(
                "gateway_backend_ready{service=\"submarine.environment.v1.EnvironmentService\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics->body.find(
                "gateway_backend_ready{service=\"submarine.permission.v1.IdentityService\"} 1"),
            std::string::npos);
  gateway->Signal(SIGTERM);
  EXPECT_EQ(gateway->Wait(), 0);
}

// Without a bus the backstop refresh (cache_ttl_ms) still brings revocations in.
TEST(GatewayAuthBackstopTest, RevocationArrivesByPeriodicRefreshWithoutABus) {
  auth::InitSodium();
  std::string dir = MakeTempDir("gateway-auth-ttl");
  Secret secret = WriteSecret(dir);
  auto key = auth::GenerateSigningKey();
  PermissionBackend perm(secret.value);
  perm::AuthState state = StateTrusting(key);
  perm.SetState(state);
  auto perm_address = perm.Start();
  ASSERT_TRUE(perm_address.ok());
  EnvironmentBackend env;
  auto env_address = env.Start();
  ASSERT_TRUE(env_address.ok());
  ReadyInfo ready;
  auto gateway = StartService(
      "submarine-gateway", dir, "gateway",
      AuthGatewayYaml(*env_address, *perm_address,
                      absl::StrCat("auth: {address: \"", *perm_address, "\", cache_ttl_ms: 300}\n"),
                      secret.file),
      &ready);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  auto bearer = Bearer(auth::SignJwt(ValidClaims("alice", "ttl-token"), key));
  ASSERT_TRUE(WaitFor([&] {
    auto r = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x", "", bearer);
    return r.ok() && r->status == 404;
  }));
  state.add_revoked_tokens()->set_token_id("ttl-token");
  perm.SetState(state);
  EXPECT_TRUE(WaitFor([&] {
    auto r = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x", "", bearer);
    return r.ok() && r->status == 401;
  }));
  gateway->Signal(SIGTERM);
  EXPECT_EQ(gateway->Wait(), 0);
}

// Refresh requests made while a fetch is in flight are merged into exactly one more fetch.
TEST(AuthStateCacheTest, RefreshesAreCoalesced) {
  auth::InitSodium();
  std::string secret = auth::RandomToken(36);
  auto key = auth::GenerateSigningKey();
  PermissionBackend perm(secret);
  perm::AuthState state = StateTrusting(key);
  perm.SetState(state);
  auto address = perm.Start();
  ASSERT_TRUE(address.ok());
  perm.Hold();

  gateway::AuthStateCache::Options options;
  options.address = *address;
  options.refresh_interval = std::chrono::hours(1);
  options.timeout = std::chrono::seconds(20);
  rpc::SetPrincipalCodec(std::make_shared<const auth::PrincipalCodec>(secret));
  gateway::AuthStateCache cache(options);
  ASSERT_TRUE(cache.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return perm.held_calls() == 1; }));
  EXPECT_EQ(cache.Current(), nullptr);
  for (int i = 0; i < 50; ++i) cache.RequestRefresh();
  perm.Release();
  ASSERT_TRUE(WaitFor([&] { return cache.loads() >= 2; }));
  ASSERT_NE(cache.Current(), nullptr);
  EXPECT_EQ(cache.Current()->issuer(), kIssuer);
  cache.Stop();
  EXPECT_EQ(perm.auth_state_calls(), 2);
  EXPECT_EQ(cache.loads(), 2u);
}

}  // namespace
}  // namespace submarine::testing
