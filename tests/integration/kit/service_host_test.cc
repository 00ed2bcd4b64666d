// The service kit (common/rpc/service_host.h) with a tiny service of its own on the run's
// throwaway PostgreSQL: what the host sets up, what it refuses, what it serves and in which
// order it destroys what a service built on it.
#include "common/rpc/service_host.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "submarine/common/v1/project_resources.grpc.pb.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::rpc {
namespace {

using submarine::testing::MakeTempDir;
using submarine::testing::TestPostgres;
using submarine::testing::WaitFor;

constexpr db::Statement kCountThings{"kit_test.count_things",
                                     "SELECT count(*) FROM things WHERE project = $1"};

const db::StatementSet& ThingStatements() {
  static const auto* set = new db::StatementSet{kCountThings};
  return *set;
}

ServiceSpec TestSpec() {
  ServiceSpec spec;
  spec.name = "kittest";
  spec.error_domain = "kittest.submarine.io";
  spec.topic_prefix = "submarine.kittest.v1.";
  spec.migrations = {{"kittest",
                      {{1, "0001_things.sql",
                        "CREATE TABLE things (project TEXT NOT NULL);"
                        "INSERT INTO things VALUES ('p'), ('p'), ('q');"}}}};
  spec.statements = {&ThingStatements()};
  spec.default_housekeeping = std::chrono::milliseconds(50);
  return spec;
}

submarine::config::v1::CommonServiceConfig Common(const std::string& dbname,
                                                  const std::string& secret_file) {
  auto& pg = TestPostgres::Get();
  submarine::config::v1::CommonServiceConfig c;
  c.mutable_server()->set_grpc_listen("127.0.0.1:0");
  c.mutable_server()->set_shutdown_grace_ms(1000);
  c.mutable_server()->set_gateway_secret_file(secret_file);
  auto* db = c.mutable_database();
  db->set_host(pg.socket_dir());
  db->set_port(static_cast<uint32_t>(pg.port()));
  db->set_dbname(dbname);
  db->set_user("postgres");
  db->set_schema("kittest");
  c.mutable_permission()->set_insecure_no_authorization(true);
  return c;
}

std::string SecretFile() {
  std::string file = MakeTempDir("kit") + "/internal.secret";
  EXPECT_TRUE(config::WriteFileAtomic(file, std::string(40, 'k'), 0600).ok());
  return file;
}

TEST(ServiceHost, RefusesToRunWithoutTheInternalSecretUnlessInsecure) {
  auto config = Common(TestPostgres::Get().CreateDatabase("kit"), "");
  config.mutable_permission()->set_insecure_no_authorization(false);
  config.mutable_permission()->set_address("127.0.0.1:1");
  auto host = ServiceHost::Create(TestSpec(), config);
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(host.status()).find("gateway_secret_file"), std::string::npos)
      << host.status();
}

TEST(ServiceHost, SubscribesOnlyToKnownPublishersAndEachOnce) {
  auto host = ServiceHost::Create(
      TestSpec(), Common(TestPostgres::Get().CreateDatabase("kit"), SecretFile()));
  ASSERT_TRUE(host.ok()) << host.status();
  auto apply = [](pqxx::work&, const submarine::common::v1::Event&) { return absl::OkStatus(); };
  absl::Status unknown = (*host)->Subscribe("nobody", apply);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(unknown).find("nobody"), std::string::npos) << unknown;
  EXPECT_TRUE((*host)->Subscribe("kittest", apply).ok());
  absl::Status twice = (*host)->Subscribe("kittest", apply);
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument) << twice;
}

TEST(ServiceHost, ServesProjectCountsRunsHousekeepingAndDestroysInReverseOrder) {
  std::vector<std::string> destroyed;
  struct Recorder {
    std::vector<std::string>* log;
    std::string name;
    ~Recorder() { log->push_back(name); }
  };
  {
    auto host = ServiceHost::Create(
        TestSpec(), Common(TestPostgres::Get().CreateDatabase("kit"), SecretFile()));
    ASSERT_TRUE(host.ok()) << host.status();
    ServiceHost& h = **host;
    h.Make<Recorder>(&destroyed, "first");
    h.Make<Recorder>(&destroyed, "second");
    h.CountInProject("things", [](pqxx::transaction_base& tx, const std::string& project) {
      return db::Exec(tx, kCountThings, project)[0][0].as<int64_t>();
    });
    std::atomic<int> runs{0};
    h.AddHousekeeping("counted", [&runs]() -> absl::StatusOr<int64_t> {
      ++runs;
      return 0;
    });
    ASSERT_TRUE(h.Start().ok());

    auto stub = submarine::common::v1::ProjectResources::NewStub(
        MakeChannel(h.runner().grpc_address()));
    auto ask = [&](const std::string& project, submarine::common::v1::CountProjectResourcesResponse* out) {
      grpc::ClientContext ctx;
      ActAs(&ctx, auth::ServicePrincipal("permission"));
      submarine::common::v1::CountProjectResourcesRequest req;
      req.set_project(project);
      return stub->CountProjectResources(&ctx, req, out);
    };
    submarine::common::v1::CountProjectResourcesResponse counts;
    ASSERT_TRUE(ask("projects/p", &counts).ok());
    EXPECT_EQ(counts.counts().at("things"), 2);
    counts.Clear();
    ASSERT_TRUE(ask("projects/none", &counts).ok());
    EXPECT_TRUE(counts.counts().empty());
    EXPECT_EQ(ask("projects/Bad!", &counts).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

    // The leader's housekeeping runs the kit's jobs and the service's, period after period.
    EXPECT_TRUE(WaitFor([&] { return runs.load() >= 3; }));
    h.runner().Shutdown();
    h.runner().Wait();
    EXPECT_TRUE(destroyed.empty());
  }
  EXPECT_EQ(destroyed, (std::vector<std::string>{"second", "first"}));
}

}  // namespace
}  // namespace submarine::rpc
