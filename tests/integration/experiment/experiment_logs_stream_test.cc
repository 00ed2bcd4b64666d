// StreamExperimentLogs end to end: a real experiment service running a real task through the
// local compute backend, behind a real gateway, followed over REST (NDJSON) and over native gRPC
// through the gateway's proxy while the task is still writing, until it ends.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/http_client.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;
namespace fs = std::filesystem;

class ExperimentLogsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartExperimentService();
    ASSERT_TRUE(p.ok()) << p.status();
    svc_ = std::move(*p);
    // A unary timeout far shorter than the streams below: they must not be cut by it.
    auto gateway = StartService(
        "submarine-gateway", svc_->dir, "gateway",
        absl::StrCat("http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\n",
                     "request_timeout_ms: 1000\nbackends:\n  - address: ", svc_->ready.grpc,
                     "\n    services: [submarine.experiment.v1.ExperimentService]\n",
                     "auth:\n  insecure_no_authorization: true\nserver: {}\n"),
        &gateway_ready_);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(*gateway);
  }

  void TearDown() override {
    if (gateway_.running()) {
      gateway_.Signal(SIGTERM);
      EXPECT_EQ(gateway_.Wait(), 0);
    }
  }

  // Creates an experiment whose one task prints "first", waits for `release` to exist, then
  // prints "second" and succeeds.
  v1::Experiment CreateWaiting(const std::string& release) {
    v1::CreateExperimentRequest req;
    req.set_parent("projects/p");
    auto* meta = req.mutable_experiment()->mutable_spec()->mutable_meta();
    meta->set_name("tail");
    meta->set_cmd(absl::StrCat("echo first; while [ ! -e '", release,
                               "' ]; do sleep 0.05; done; echo second"));
    (*req.mutable_experiment()->mutable_spec()->mutable_spec())["Worker"].set_replicas(1);
    v1::Experiment out;
    grpc::Status st = svc_->stub->CreateExperiment(ExperimentCtx().get(), req, &out);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return out;
  }

  static void Touch(const std::string& path) { std::ofstream(path) << "go\n"; }

  std::unique_ptr<ExperimentProcess> svc_;
  ChildProcess gateway_;
  ReadyInfo gateway_ready_;
};

TEST_F(ExperimentLogsStreamTest, FollowsARunningTaskOverRestAndGrpcUntilItEnds) {
  const std::string release = absl::StrCat(svc_->dir, "/release");
  v1::Experiment created = CreateWaiting(release);
  ASSERT_FALSE(created.name().empty());

  // REST: NDJSON, one ExperimentLogs per line.
  auto http = HttpConnection::Connect(gateway_ready_.http);
  ASSERT_TRUE(http.ok()) << http.status();
  auto head = http->StartRequest(
      "GET", absl::StrCat("/v1/", created.name(), "/logs:stream?follow=true&task=worker-0"));
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-type"), "application/x-ndjson");
  EXPECT_EQ(head->Header("transfer-encoding"), "chunked");
  std::string rest_data;
  bool rest_complete = false;
  int rest_lines = 0;
  // Reads lines until `until` (if not empty) is in the data or the stream says the log is
  // complete.
  auto read_rest = [&](const std::string& until) {
    while (!rest_complete && (until.empty() || rest_data.find(until) == std::string::npos)) {
      auto chunk = http->ReadChunk();
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      ASSERT_FALSE(chunk->empty()) << "the stream ended before the log did: " << rest_data;
      for (auto line : absl::StrSplit(*chunk, '\n', absl::SkipEmpty())) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << line;
        ASSERT_FALSE(j.contains("error")) << line;
        EXPECT_EQ(j.value("task", ""), "worker-0");
        rest_data += j.value("data", "");
        rest_complete = j.value("complete", false);
        ++rest_lines;
      }
    }
  };

  // gRPC through the gateway's proxy, no deadline of its own.
  auto channel = grpc::CreateChannel(gateway_ready_.grpc, grpc::InsecureChannelCredentials());
  auto stub = v1::ExperimentService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::StreamExperimentLogsRequest req;
  req.set_name(created.name());
  req.set_follow(true);
  auto reader = stub->StreamExperimentLogs(&ctx, req);
  std::string grpc_data;
  bool grpc_complete = false;
  auto read_grpc = [&](const std::string& until) {
    v1::ExperimentLogs m;
    while (!grpc_complete && (until.empty() || grpc_data.find(until) == std::string::npos)) {
      ASSERT_TRUE(reader->Read(&m)) << "the stream ended before the log did: " << grpc_data;
      grpc_data += m.data();
      grpc_complete = m.complete();
    }
  };

  read_rest("first\n");
  read_grpc("first\n");
  // The task is still waiting: neither stream may have ended.
  EXPECT_FALSE(rest_complete);
  EXPECT_FALSE(grpc_complete);

  Touch(release);
  read_rest("");  // to the end
  read_grpc("");
  EXPECT_TRUE(rest_complete);
  EXPECT_TRUE(grpc_complete);
  EXPECT_EQ(rest_data, "first\nsecond\n");
  EXPECT_EQ(grpc_data, "first\nsecond\n");
  EXPECT_GE(rest_lines, 2);
  auto last = http->ReadChunk();  // the end of the chunked body
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, "");
  grpc::Status st = reader->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(ExperimentLogsStreamTest, WithoutFollowTheStreamEndsAtTheLogsEnd) {
  const std::string release = absl::StrCat(svc_->dir, "/release-now");
  Touch(release);
  v1::Experiment created = CreateWaiting(release);
  ASSERT_TRUE(WaitFor([&] {
    v1::GetExperimentRequest g;
    g.set_name(created.name());
    v1::Experiment e;
    return svc_->stub->GetExperiment(ExperimentCtx().get(), g, &e).ok() &&
           e.state() == v1::SUCCEEDED;
  }));
  auto r = HttpCall(gateway_ready_.http, "GET",
                    absl::StrCat("/v1/", created.name(), "/logs:stream?offset=6"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<std::string> lines = absl::StrSplit(r->body, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << r->body;
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j.value("data", ""), "second\n");  // from byte 6 on
  EXPECT_EQ(j.value("nextOffset", ""), "13");
  EXPECT_TRUE(j.value("complete", false));

  // A task the experiment does not have: an ordinary error answer, before any line.
  auto missing = HttpCall(gateway_ready_.http, "GET",
                          absl::StrCat("/v1/", created.name(), "/logs:stream?task=ps-7"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404) << missing->body;
  EXPECT_NE(missing->body.find("TASK_NOT_FOUND"), std::string::npos) << missing->body;
}

// The raw download: the log itself as text/plain, whole or followed, the same errors first.
TEST_F(ExperimentLogsStreamTest, TheLogDownloadsAsPlainTextWholeOrFollowed) {
  const std::string release = absl::StrCat(svc_->dir, "/release-download");
  v1::Experiment created = CreateWaiting(release);
  ASSERT_FALSE(created.name().empty());

  // Followed while the task still runs: "first", then "second" once it was let go.
  auto http = HttpConnection::Connect(gateway_ready_.http);
  ASSERT_TRUE(http.ok()) << http.status();
  auto head = http->StartRequest(
      "GET", absl::StrCat("/v1/", created.name(), "/logs:download?follow=true&task=worker-0"));
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->status, 200) << head->body;
  EXPECT_EQ(head->Header("content-type"), "text/plain; charset=utf-8");
  std::string text = head->body;
  while (text.find("first\n") == std::string::npos) {
    auto chunk = http->ReadChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    ASSERT_FALSE(chunk->empty()) << "ended before the task wrote: " << text;
    text += *chunk;
  }
  Touch(release);
  for (;;) {
    auto chunk = http->ReadChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (chunk->empty()) break;  // the task ended: the body ends
    text += *chunk;
  }
  EXPECT_EQ(text, "first\nsecond\n");

  // Whole, from an offset, once it ended.
  auto r = HttpCall(gateway_ready_.http, "GET",
                    absl::StrCat("/v1/", created.name(), "/logs:download?offset=6"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "second\n");

  auto missing = HttpCall(gateway_ready_.http, "GET",
                          absl::StrCat("/v1/", created.name(), "/logs:download?task=ps-7"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404) << missing->body;
  EXPECT_NE(missing->body.find("TASK_NOT_FOUND"), std::string::npos) << missing->body;
}

}  // namespace
}  // namespace submarine::testing
