// The gateway's connection limits against an attacker, in the real submarine-gateway process
// with authentication on, in front of the in-memory environment and permission backends: idle
// connections from one address, slow headers, trusted proxies and their forwarded clients, and
// the global limit. The test plays several clients by binding to different loopback addresses
// (on Linux every 127.x.y.z is loopback).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "tests/integration/gateway/environment_backend.h"
#include "tests/integration/gateway/gateway_fixture.h"
#include "tests/integration/gateway/permission_backend.h"
#include "tests/support/curl_client.h"
#include "tests/support/process.h"
#include "tests/support/raw_connection.h"

namespace submarine::testing {
namespace {

constexpr char kAttacker[] = "127.0.0.2";
constexpr char kUser[] = "127.0.0.3";
constexpr char kProxy[] = "127.0.0.4";
constexpr char kHeld[] = "/v1/projects/default/environments/held";
constexpr char kHealthz[] = "GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n";

class GatewayLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auth::InitSodium();
    dir_ = MakeTempDir("gateway-limits");
    secret_ = WriteSecret(dir_);
    key_ = auth::GenerateSigningKey();
    perm_ = std::make_unique<PermissionBackend>(secret_.value);
    perm_->SetState(StateTrusting(key_));
    auto perm_address = perm_->Start();
    ASSERT_TRUE(perm_address.ok()) << perm_address.status();
    perm_address_ = *perm_address;
    env_ = std::make_unique<EnvironmentBackend>();
    auto env_address = env_->Start();
    ASSERT_TRUE(env_address.ok()) << env_address.status();
    env_address_ = *env_address;
  }

  void TearDown() override {
    if (gateway_.running()) {
      gateway_.Signal(SIGTERM);
      EXPECT_EQ(gateway_.Wait(), 0);
    }
  }

  // Starts the gateway with `extra` YAML and waits until it is ready (token state loaded).
  void StartGateway(const std::string& extra) {
    std::string yaml = absl::StrCat(
        AuthGatewayYaml(env_address_, perm_address_,
                        absl::StrCat("auth: {address: \"", perm_address_, "\"}\n"), secret_.file),
        extra);
    auto child = StartService("submarine-gateway", dir_, "gateway", yaml, &ready_);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(child).value();
    ASSERT_TRUE(WaitFor([&] { return From(kUser, "GET", "/readyz").status == 200; }))
        << Tail(absl::StrCat(dir_, "/gateway.log"));
  }

  // One request from `source` on a fresh connection (status 0 when no answer came).
  HttpResult From(const std::string& source, const std::string& method, const std::string& path,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    CurlOptions options;
    options.source_ip = source;
    options.headers = std::move(headers);
    auto r = CurlCall(method, absl::StrCat("http://", ready_.http, path), options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResult();
  }

  // The value of one series of the gateway's /metrics, scraped on `connection` or else on a
  // fresh connection from kUser (-1 if absent).
  int64_t Metric(const std::string& series, RawConnection* connection = nullptr) {
    std::string text;
    if (connection == nullptr) {
      text = From(kUser, "GET", "/metrics").body;
    } else if (!connection->Send("GET /metrics HTTP/1.1\r\nHost: gateway\r\n\r\n").ok() ||
               connection->ReadStatus(&text) != 200) {
      return -1;
    }
    size_t at = text.find(absl::StrCat("\n", series, " "));
    if (at == std::string::npos) return -1;
    return std::atoll(text.c_str() + at + series.size() + 2);
  }

  std::string Token(const std::string& user, bool admin = false) {
    auto claims = ValidClaims(user, absl::StrCat("tok-", user));
    claims.admin = admin;
    return auth::SignJwt(claims, key_);
  }

  std::string dir_;
  Secret secret_;
  auth::SigningKey key_;
  std::unique_ptr<PermissionBackend> perm_;
  std::unique_ptr<EnvironmentBackend> env_;
  std::string perm_address_;
  std::string env_address_;
  ChildProcess gateway_;
  ReadyInfo ready_;
};

// Found by attacking a running stack: 2,000 idle connections from one client filled the 512
// connection slots, and every other request, /healthz included, was answered 503 for as long
// as they were held.
TEST_F(GatewayLimitsTest, IdleConnectionsFromOneAddressCannotStarveOthers) {
  constexpr int kConnections = 2000;
  constexpr int kPerClient = 64;  // the default
  rlimit files;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  files.rlim_cur = std::max<rlim_t>(files.rlim_cur, std::min<rlim_t>(files.rlim_max, 4 * 1024));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &files), 0);
  ASSERT_GE(files.rlim_cur, static_cast<rlim_t>(kConnections + 256))
      << "the test needs more open files than RLIMIT_NOFILE allows";
  StartGateway("");

  std::vector<RawConnection> attack;
  for (int i = 0; i < kConnections; ++i) {
    auto c = RawConnection::Open(ready_.http, kAttacker);
    ASSERT_TRUE(c.ok()) << "connection " << i << ": " << c.status();
    attack.push_back(std::move(c).value());
  }
  // Once the gateway has dealt with every connection, the refused ones have their answer (or
  // the close) waiting and the admitted ones are silent.
  EXPECT_TRUE(WaitFor([&] {
    return Metric("gateway_http_connections_refused_total{reason=\"client_limit\"}") ==
           kConnections - kPerClient;
  }));
  std::vector<RawConnection*> silent;
  RawConnection* refused = nullptr;
  for (auto& c : attack) {
    if (!c.Readable()) {
      silent.push_back(&c);
    } else if (refused == nullptr) {
      refused = &c;
    }
  }
  EXPECT_EQ(silent.size(), static_cast<size_t>(kPerClient));
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->ReadStatus(), 429);

  // Everyone else is served all along: health, readiness and an authenticated call.
  EXPECT_EQ(From(kUser, "GET", "/healthz").status, 200);
  EXPECT_EQ(From(kUser, "GET", "/readyz").status, 200);
  auto me = From(kUser, "GET", "/v1/users:me", Bearer(Token("alice")));
  EXPECT_EQ(me.status, 200) << me.body;
  // The attacker's admitted connections are ordinary ones.
  ASSERT_FALSE(silent.empty());
  ASSERT_TRUE(silent.front()->Send(kHealthz).ok());
  EXPECT_EQ(silent.front()->ReadStatus(), 200);
}

// Slowloris: a header block trickling in holds its connection for header_timeout_ms at most,
// while a connection idle between requests keeps the (much longer) idle timeout.
TEST_F(GatewayLimitsTest, SlowHeadersAreCutOffAfterTheHeaderTimeout) {
  StartGateway("header_timeout_ms: 300\n");
  auto idle = RawConnection::Open(ready_.http, kUser);
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto slow = RawConnection::Open(ready_.http, kAttacker);
  ASSERT_TRUE(slow.ok()) << slow.status();
  ASSERT_TRUE(slow->Send("GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: 1").ok());
  // The idle timeout is 60 s: only the header timeout closes it this soon.
  EXPECT_TRUE(slow->WaitClosed(std::chrono::seconds(10)));
  // (The socket closes as the timer fires; the count follows on the connection's strand.)
  EXPECT_TRUE(WaitFor([&] { return Metric("gateway_http_header_timeouts_total") == 1; }));
  // `idle` has now waited longer than the header timeout without sending anything.
  ASSERT_TRUE(idle->Send(kHealthz).ok());
  EXPECT_EQ(idle->ReadStatus(), 200);
}

// An ingress forwards many clients over its connections: it is not capped as one client, while
// each forwarded client (the right-most X-Forwarded-For address that is not a trusted proxy) is
// bounded in requests in flight. A peer that is not trusted is capped whatever it claims.
TEST_F(GatewayLimitsTest, TrustedProxyIsNotCappedAsOneClientButItsClientsAre) {
  StartGateway(absl::StrCat("max_connections_per_client: 3\n", "trusted_proxies: [\"", kProxy,
                            "/32\", \"10.0.0.0/8\"]\n"));
  std::vector<RawConnection> proxy;
  for (int i = 0; i < 8; ++i) {
    auto c = RawConnection::Open(ready_.http, kProxy);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->Send(absl::StrCat("GET /healthz HTTP/1.1\r\nHost: gateway\r\n",
                                     "X-Forwarded-For: 203.0.113.", i, "\r\n\r\n"))
                    .ok());
    EXPECT_EQ(c->ReadStatus(), 200) << "proxy connection " << i;
    proxy.push_back(std::move(c).value());
  }
  std::vector<RawConnection> untrusted;
  for (int i = 0; i < 4; ++i) {
    auto c = RawConnection::Open(ready_.http, kAttacker);
    ASSERT_TRUE(c.ok()) << c.status();
    if (i < 3) {
      ASSERT_TRUE(
          c->Send("GET /healthz HTTP/1.1\r\nHost: g\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n").ok());
      EXPECT_EQ(c->ReadStatus(), 200) << "untrusted connection " << i;
    } else {
      EXPECT_EQ(c->ReadStatus(), 429) << "the fourth connection of an untrusted peer";
    }
    untrusted.push_back(std::move(c).value());
  }

  // Three requests of one forwarded client in flight...
  auto bearer = Bearer(Token("alice"));
  std::vector<std::thread> held;
  std::vector<int> held_status(3, 0);
  for (int i = 0; i < 3; ++i) {
    held.emplace_back([&, i] {
      auto headers = bearer;
      headers.emplace_back("X-Forwarded-For", "198.51.100.7");
      held_status[i] = From(kProxy, "GET", kHeld, headers).status;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return env_->held_calls() == 3; }));
  // ... so its fourth is refused, whatever it wrote to the left and whichever trusted hops
  // follow,
  for (const char* chain : {"198.51.100.7", "10.9.9.9, 198.51.100.7", "198.51.100.7, 10.1.1.1",
                            "198.51.100.7:4711, 127.0.0.4"}) {
    auto headers = bearer;
    headers.emplace_back("X-Forwarded-For", chain);
    auto r = From(kProxy, "GET", "/v1/users:me", headers);
    EXPECT_EQ(r.status, 429) << chain << ": " << r.body;
    EXPECT_EQ(ErrorInfo(Json(r))["reason"], "CLIENT_REQUEST_LIMIT") << r.body;
  }
  // while another client behind the same proxy is served.
  auto other_headers = bearer;
  other_headers.emplace_back("X-Forwarded-For", "198.51.100.7, 198.51.100.8");
  EXPECT_EQ(From(kProxy, "GET", "/v1/users:me", other_headers).status, 200);
  env_->ReleaseHeld();
  for (auto& t : held) t.join();
  EXPECT_EQ(held_status, std::vector<int>(3, 200));
  auto again = bearer;
  again.emplace_back("X-Forwarded-For", "198.51.100.7");
  EXPECT_EQ(From(kProxy, "GET", "/v1/users:me", again).status, 200);
  EXPECT_GE(Metric("gateway_http_requests_refused_total{reason=\"client_limit\"}"), 4);
}

// At max_connections a newcomer closes the connection idle the longest; it is refused with 503
// only when every connection is in the middle of a request.
TEST_F(GatewayLimitsTest, AtTheLimitTheLongestIdleConnectionMakesRoom) {
  StartGateway("max_connections: 3\n");
  std::vector<RawConnection> idle;
  auto open = [&] {
    auto c = RawConnection::Open(ready_.http, kAttacker);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) idle.push_back(std::move(c).value());
    return c.ok();
  };
  // Once the start-up checks' connections are gone, idle[0] is the only one open...
  ASSERT_TRUE(open());
  ASSERT_TRUE(WaitFor([&] { return Metric("gateway_http_connections_open", &idle[0]) == 1; }));
  // ...and once the gateway counts it idle, it has been idle longer than the next two will be.
  ASSERT_TRUE(open());
  ASSERT_TRUE(WaitFor([&] { return Metric("gateway_http_connections_idle", &idle[1]) == 1; }));
  ASSERT_TRUE(open());
  ASSERT_TRUE(idle[2].Send(kHealthz).ok());
  ASSERT_EQ(idle[2].ReadStatus(), 200);
  EXPECT_EQ(From(kUser, "GET", "/healthz").status, 200);
  EXPECT_TRUE(idle[0].WaitClosed(std::chrono::seconds(10))) << "the longest idle was not closed";
  EXPECT_FALSE(idle[2].Readable()) << "a more recently used connection was closed";
  EXPECT_GE(Metric("gateway_http_connections_evicted_total"), 1);

  auto bearer = Bearer(Token("alice"));
  std::vector<std::thread> held;
  std::vector<int> held_status(3, 0);
  for (int i = 0; i < 3; ++i) {
    held.emplace_back([&, i] { held_status[i] = From(kUser, "GET", kHeld, bearer).status; });
  }
  ASSERT_TRUE(WaitFor([&] { return env_->held_calls() == 3; }));
  auto busy = RawConnection::Open(ready_.http, kUser);
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_EQ(busy->ReadStatus(), 503);
  env_->ReleaseHeld();
  for (auto& t : held) t.join();
  EXPECT_EQ(held_status, std::vector<int>(3, 200));
  EXPECT_GE(Metric("gateway_http_connections_refused_total{reason=\"global_limit\"}"), 1);
}

}  // namespace
}  // namespace submarine::testing
