// HTTPS on the REST side of the real submarine-gateway process (http_tls), with certificates from
// a throwaway CA made by the test: HTTPS works for a client trusting that CA, while a plain-HTTP
// client and a client trusting another CA get nothing; with ca_file the gateway demands a client
// certificate from that CA (mutual TLS). The gateway runs with authentication off.

#include <gtest/gtest.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/gateway/environment_backend.h"
#include "tests/integration/gateway/gateway_fixture.h"
#include "tests/support/curl_client.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/test_ca.h"

namespace submarine::testing {
namespace {

class GatewayTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("gateway-tls");
    auto ca = TestCa::Create(dir_, "trusted");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCa>(std::move(ca).value());
    auto other = TestCa::Create(dir_, "stranger");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = std::make_unique<TestCa>(std::move(other).value());
    auto server = ca_->IssueServer("gateway");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    auto address = backend_.Start();
    ASSERT_TRUE(address.ok()) << address.status();
    backend_address_ = *address;
  }

  void TearDown() override {
    if (gateway_.running()) {
      gateway_.Signal(SIGTERM);
      EXPECT_EQ(gateway_.Wait(), 0);
    }
  }

  std::string Yaml(const std::string& tls_block) const {
    return absl::StrCat("http_listen: 127.0.0.1:0\n", "backends:\n",
                        "  - address: ", backend_address_, "\n", "    services: ", kEnvServices,
                        "\n", "auth: {insecure_no_authorization: true}\n", tls_block);
  }

  void StartGateway(const std::string& tls_block) {
    auto child = StartService("submarine-gateway", dir_, "gateway", Yaml(tls_block), &ready_);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(child).value();
  }

  absl::StatusOr<HttpResult> Https(const std::string& path, CurlOptions options) {
    return CurlCall("GET", absl::StrCat("https://", ready_.http, path), options);
  }

  std::string dir_;
  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_;
  TestCa::Issued server_;
  EnvironmentBackend backend_;
  std::string backend_address_;
  ChildProcess gateway_;
  ReadyInfo ready_;
};

TEST_F(GatewayTlsTest, ServesHttpsWithTheConfiguredCertificate) {
  StartGateway(absl::StrCat("http_tls: {cert_file: \"", server_.cert_file, "\", key_file: \"",
                            server_.key_file, "\"}\n"));
  CurlOptions trusting;
  trusting.ca_file = ca_->ca_file();
  auto health = Https("/healthz", trusting);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  auto routed = Https("/v1/projects/default/environments/missing", trusting);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->status, 404) << routed->body;
  EXPECT_EQ(ErrorInfo(Json(*routed))["reason"], "RESOURCE_NOT_FOUND");

  // A client that does not trust the gateway's CA refuses it...
  CurlOptions stranger;
  stranger.ca_file = other_->ca_file();
  EXPECT_FALSE(Https("/healthz", stranger).ok());
  // ...and plain HTTP gets no answer at all.
  EXPECT_FALSE(HttpCall(ready_.http, "GET", "/healthz").ok());
  EXPECT_FALSE(CurlCall("GET", absl::StrCat("http://", ready_.http, "/healthz")).ok());

  // The gateway counts the failed handshakes, and still serves.
  auto metrics = Https("/metrics", trusting);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->body.find("\ngateway_http_tls_handshake_failures_total 0\n"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("\ngateway_http_tls_handshake_failures_total "), std::string::npos);
}

TEST_F(GatewayTlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  StartGateway(absl::StrCat("http_tls: {cert_file: \"", server_.cert_file, "\", key_file: \"",
                            server_.key_file, "\", ca_file: \"", ca_->ca_file(), "\"}\n"));
  auto client = ca_->IssueClient("alice");
  ASSERT_TRUE(client.ok()) << client.status();
  auto impostor = other_->IssueClient("mallory");
  ASSERT_TRUE(impostor.ok()) << impostor.status();

  CurlOptions with_certificate;
  with_certificate.ca_file = ca_->ca_file();
  with_certificate.cert_file = client->cert_file;
  with_certificate.key_file = client->key_file;
  auto ok = Https("/healthz", with_certificate);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 200);

  CurlOptions without;
  without.ca_file = ca_->ca_file();
  auto refused = Https("/healthz", without);
  EXPECT_FALSE(refused.ok()) << "answered " << refused->status << " without a certificate";

  CurlOptions untrusted = with_certificate;
  untrusted.cert_file = impostor->cert_file;
  untrusted.key_file = impostor->key_file;
  auto wrong_ca = Https("/healthz", untrusted);
  EXPECT_FALSE(wrong_ca.ok()) << "answered " << wrong_ca->status << " to another CA's client";
}

TEST_F(GatewayTlsTest, RefusesToStartWithUnusableFilesNamingTheKey) {
  ReadyInfo ready;
  auto no_key = StartService(
      "submarine-gateway", dir_, "no-key",
      Yaml(absl::StrCat("http_tls: {cert_file: \"", server_.cert_file, "\"}\n")), &ready);
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("http_tls.key_file"), absl::string_view::npos)
      << no_key.status();
  auto missing =
      StartService("submarine-gateway", dir_, "missing",
                   Yaml(absl::StrCat("http_tls: {cert_file: \"", dir_,
                                     "/absent.pem\", key_file: \"", server_.key_file, "\"}\n")),
                   &ready);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("http_tls.cert_file"), absl::string_view::npos)
      << missing.status();
  auto mismatched = StartService(
      "submarine-gateway", dir_, "mismatched",
      Yaml(absl::StrCat("http_tls: {cert_file: \"", server_.cert_file, "\", key_file: \"",
                        ca_->IssueClient("other")->key_file, "\"}\n")),
      &ready);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("http_tls.key_file"), absl::string_view::npos)
      << mismatched.status();
}

}  // namespace
}  // namespace submarine::testing
