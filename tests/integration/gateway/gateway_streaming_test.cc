// Streaming through the real gateway process (submarine-gateway-streaming-test: the gateway
// built with the test service's descriptor too) in front of an in-process backend serving
// StreamingTestService (streaming_test.proto): every kind of RPC through the native gRPC proxy,
// server streaming over REST as NDJSON and as server-sent events, and client-streaming REST
// uploads. The gateway's unary timeout is 1 s here, shorter than some of the streams.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/integration/gateway/gateway_fixture.h"
#include "tests/integration/gateway/streaming_test.grpc.pb.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace submarine::testing {
namespace {

using nlohmann::json;
namespace gt = submarine::gatewaytest::v1;

constexpr int kUnaryTimeoutMs = 1000;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kUploadChunk = kMiB;  // the gateway's kUploadChunkBytes

// FNV-1a, 64 bits, continued from `hash`.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t Fnv(uint64_t hash, std::string_view data) {
  for (unsigned char c : data) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// Byte `i` of a generated body (not periodic at a power of two).
char BodyByte(size_t i) { return static_cast<char>((i * 131 + (i >> 17)) & 0xff); }
std::string Body(size_t size, size_t from = 0) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = BodyByte(from + i);
  return out;
}

// The resident memory of process `pid` in bytes (VmRSS), 0 if unreadable.
size_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

// The test service. Records how each tagged call ended as the backend saw it: "ok", "failed",
// or "cancelled" (the client went away or the deadline passed). Thread-safe.
class StreamingBackend final : public gt::StreamingTestService::Service {
 public:
  grpc::Status Count(grpc::ServerContext* ctx, const gt::CountRequest* req,
                     grpc::ServerWriter<gt::CountReply>* writer) override {
    return Produce(ctx, *req, writer);
  }
  grpc::Status CountBounded(grpc::ServerContext* ctx, const gt::CountRequest* req,
                            grpc::ServerWriter<gt::CountReply>* writer) override {
    return Produce(ctx, *req, writer);
  }
  grpc::Status Sum(grpc::ServerContext*, grpc::ServerReader<gt::CountReply>* reader,
                   gt::SumReply* reply) override {
    gt::CountReply m;
    while (reader->Read(&m)) {
      reply->set_sum(reply->sum() + m.index());
      reply->set_count(reply->count() + 1);
    }
    return grpc::Status::OK;
  }
  grpc::Status Echo(grpc::ServerContext*,
                    grpc::ServerReaderWriter<gt::CountReply, gt::CountReply>* stream) override {
    gt::CountReply m;
    while (stream->Read(&m)) {
      if (!stream->Write(m)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status EchoBody(grpc::ServerContext*, const google::api::HttpBody* req,
                        google::api::HttpBody* reply) override {
    *reply = *req;
    if (reply->content_type().empty()) reply->set_content_type("application/x-empty-type");
    return grpc::Status::OK;
  }
  grpc::Status Upload(grpc::ServerContext*, const gt::UploadRequest* req,
                      gt::UploadReply* reply) override {
    reply->set_tag(req->tag());
    reply->set_content_type(req->body().content_type());
    reply->set_size(static_cast<int64_t>(req->body().data().size()));
    int64_t sum = 0;
    for (unsigned char c : req->body().data()) sum += c;
    reply->set_byte_sum(sum);
    return grpc::Status::OK;
  }
  grpc::Status Download(grpc::ServerContext*, const gt::DownloadRequest* req,
                        grpc::ServerWriter<google::api::HttpBody>* writer) override {
    for (int i = 0; i < req->chunks(); ++i) {
      if (req->has_fail_after() && i == req->fail_after()) {
        Record(req->tag(), "failed");
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "download failed");
      }
      google::api::HttpBody chunk;
      chunk.set_content_type(i == 0 ? "text/csv" : "ignored/after-the-first");
      chunk.set_data(std::string(static_cast<size_t>(req->chunk_bytes()), static_cast<char>(i)));
      if (!writer->Write(chunk)) {
        Record(req->tag(), "cancelled");
        return grpc::Status::CANCELLED;
      }
    }
    Record(req->tag(), "ok");
    return grpc::Status::OK;
  }

  grpc::Status UploadStream(grpc::ServerContext* ctx, grpc::ServerReader<gt::UploadChunk>* reader,
                            gt::UploadSummary* reply) override {
    return Consume(ctx, reader, reply);
  }
  grpc::Status UploadStreamLimited(grpc::ServerContext* ctx,
                                   grpc::ServerReader<gt::UploadChunk>* reader,
                                   gt::UploadSummary* reply) override {
    return Consume(ctx, reader, reply);
  }
  grpc::Status UploadRaw(grpc::ServerContext* ctx,
                         grpc::ServerReader<google::api::HttpBody>* reader,
                         gt::UploadSummary* reply) override {
    return Consume(ctx, reader, reply);
  }

  // Lets a slow upload take `n` more messages.
  void Grant(int n) {
    std::lock_guard lock(mu_);
    permits_ += n;
    cv_.notify_all();
  }
  int Permits() {
    std::lock_guard lock(mu_);
    return permits_;
  }
  // Body bytes the upload tagged `tag` has received so far.
  int64_t Received(const std::string& tag) {
    std::lock_guard lock(mu_);
    auto it = received_.find(tag);
    return it == received_.end() ? 0 : it->second;
  }

  // How the call tagged `tag` ended ("" while it runs or before it started).
  std::string Outcome(const std::string& tag) {
    std::lock_guard lock(mu_);
    auto it = outcomes_.find(tag);
    return it == outcomes_.end() ? "" : it->second;
  }

 private:
  grpc::Status Produce(grpc::ServerContext* ctx, const gt::CountRequest& req,
                       grpc::ServerWriter<gt::CountReply>* writer) {
    for (int i = 0; i < req.count(); ++i) {
      if (req.has_fail_after() && i == req.fail_after()) {
        Record(req.tag(), "failed");
        return ToGrpcStatus(MakeError(absl::StatusCode::kFailedPrecondition, "COUNT_FAILED",
                                      absl::StrCat("count failed after ", i, " messages"),
                                      {{"index", absl::StrCat(i)}}),
                            "gatewaytest.submarine.io");
      }
      // The producer's pace, not synchronisation: the stream lasts this long.
      if (i > 0 && req.interval_ms() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(req.interval_ms()));
      }
      gt::CountReply m;
      m.set_index(i);
      m.set_tag(req.tag());
      m.set_padding(std::string(static_cast<size_t>(req.padding()), 'p'));
      if (!writer->Write(m)) {
        Record(req.tag(), "cancelled");
        return grpc::Status::CANCELLED;
      }
    }
    if (req.hold()) {
      // The sync API has no cancellation callback: look every few milliseconds.
      while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Record(req.tag(), ctx->IsCancelled() ? "cancelled" : "ok");
    return grpc::Status::OK;
  }

  static const google::api::HttpBody& BodyOf(const gt::UploadChunk& m) { return m.body(); }
  static const google::api::HttpBody& BodyOf(const google::api::HttpBody& m) { return m; }

  // Reads an upload to its end and sums it up; records "ok", "failed" or "cancelled".
  template <class Chunk>
  grpc::Status Consume(grpc::ServerContext* ctx, grpc::ServerReader<Chunk>* reader,
                       gt::UploadSummary* reply) {
    Chunk m;
    std::string tag = "raw";
    int64_t fail_after = 0;
    bool slow = false;
    uint64_t checksum = kFnvOffset;
    while (reader->Read(&m)) {
      const google::api::HttpBody& body = BodyOf(m);
      if (reply->messages() == 0) {
        if constexpr (std::is_same_v<Chunk, gt::UploadChunk>) {
          tag = m.tag();
          fail_after = m.fail_after_bytes();
          slow = m.slow();
        }
        reply->set_tag(tag);
        reply->set_content_type(body.content_type());
      } else {
        Chunk only_data;
        if constexpr (std::is_same_v<Chunk, gt::UploadChunk>) {
          only_data.mutable_body()->set_data(body.data());
        } else {
          only_data.set_data(body.data());
        }
        if (!google::protobuf::util::MessageDifferencer::Equals(m, only_data)) {
          reply->set_later_with_other_fields(reply->later_with_other_fields() + 1);
        }
      }
      reply->set_messages(reply->messages() + 1);
      reply->set_size(reply->size() + static_cast<int64_t>(body.data().size()));
      reply->set_largest_message(
          std::max(reply->largest_message(), static_cast<int64_t>(body.data().size())));
      checksum = Fnv(checksum, body.data());
      {
        std::lock_guard lock(mu_);
        received_[tag] = reply->size();
      }
      if (fail_after > 0 && reply->size() >= fail_after) {
        Record(tag, "failed");
        return ToGrpcStatus(
            MakeError(absl::StatusCode::kFailedPrecondition, "UPLOAD_FAILED",
                      absl::StrCat("upload failed after ", reply->size(), " bytes")),
            "gatewaytest.submarine.io");
      }
      if (slow) {
        // The test's permit, not a pace: look for cancellation every few milliseconds, as the
        // sync API has no callback for it.
        std::unique_lock lock(mu_);
        while (permits_ == 0 && !ctx->IsCancelled()) {
          cv_.wait_for(lock, std::chrono::milliseconds(5));
        }
        if (permits_ > 0) --permits_;
      }
    }
    if (ctx->IsCancelled()) {
      Record(tag, "cancelled");
      return grpc::Status::CANCELLED;
    }
    reply->set_checksum(checksum);
    Record(tag, "ok");
    return grpc::Status::OK;
  }

  void Record(const std::string& tag, const std::string& outcome) {
    std::lock_guard lock(mu_);
    outcomes_[tag] = outcome;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> outcomes_;
  std::map<std::string, int64_t> received_;
  int permits_ = 0;
};

class GatewayStreamingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = new StreamingBackend();
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(backend_);
    builder.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);  // as every Submarine service
    server_ = builder.BuildAndStart().release();
    ASSERT_NE(port, 0);
    dir_ = new std::string(MakeTempDir("gateway-streaming-test"));
    ready_ = new ReadyInfo();
    std::string yaml = absl::StrCat(
        "http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\nrequest_timeout_ms: ", kUnaryTimeoutMs,
        "\nio_threads: 2\nbackends:\n  - address: 127.0.0.1:", port,
        "\n    services: [submarine.gatewaytest.v1.StreamingTestService]\n", "max_uploads: 3\n",
        "auth: {insecure_no_authorization: true}\nserver:\n  shutdown_grace_ms: 10000\n");
    auto child = StartService("submarine-gateway-streaming-test", *dir_, "gateway", yaml, ready_);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = new ChildProcess(std::move(child).value());
    channel_ = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    if (gateway_ != nullptr) {
      gateway_->Signal(SIGTERM);
      EXPECT_EQ(gateway_->Wait(), 0);
    }
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now());
      server_->Wait();
    }
    delete channel_;
    delete gateway_;
    delete server_;
    delete backend_;
    delete ready_;
    delete dir_;
  }

  void SetUp() override { ASSERT_NE(gateway_, nullptr) << "the gateway did not start"; }

  static std::unique_ptr<gt::StreamingTestService::Stub> Stub() {
    return gt::StreamingTestService::NewStub(*channel_);
  }

  static bool Ends(const std::string& tag, const std::string& outcome) {
    return WaitFor([&] { return backend_->Outcome(tag) == outcome; }, std::chrono::seconds(10));
  }

  // A streamed REST answer read whole: its lines (NDJSON) or events (SSE), without separators.
  static std::vector<std::string> Split(const std::string& body, const std::string& separator) {
    std::vector<std::string> out;
    for (auto piece : absl::StrSplit(body, separator)) {
      if (!piece.empty()) out.emplace_back(piece);
    }
    return out;
  }

  static inline StreamingBackend* backend_ = nullptr;
  static inline grpc::Server* server_ = nullptr;
  static inline ChildProcess* gateway_ = nullptr;
  static inline ReadyInfo* ready_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline std::shared_ptr<grpc::Channel>* channel_ = nullptr;
};

// ---- native gRPC through the proxy ----

TEST_F(GatewayStreamingTest, ServerStreamingIsForwardedMessageByMessage) {
  grpc::ClientContext ctx;
  gt::CountRequest req;
  req.set_tag("grpc-server");
  req.set_count(5);
  auto reader = Stub()->Count(&ctx, req);
  gt::CountReply m;
  std::vector<int> seen;
  while (reader->Read(&m)) {
    EXPECT_EQ(m.tag(), "grpc-server");
    seen.push_back(m.index());
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  // The gateway names the call before any message (a generated id, as for unary calls).
  EXPECT_EQ(ctx.GetServerInitialMetadata().count("x-request-id"), 1u);
}

TEST_F(GatewayStreamingTest, ClientStreamingIsForwarded) {
  grpc::ClientContext ctx;
  gt::SumReply sum;
  auto writer = Stub()->Sum(&ctx, &sum);
  for (int i = 0; i < 100; ++i) {
    gt::CountReply m;
    m.set_index(i);
    ASSERT_TRUE(writer->Write(m)) << "message " << i;
  }
  ASSERT_TRUE(writer->WritesDone());
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(sum.count(), 100);
  EXPECT_EQ(sum.sum(), 4950);
}

TEST_F(GatewayStreamingTest, BidiStreamingAnswersEachMessageBeforeTheNextIsSent) {
  grpc::ClientContext ctx;
  auto stream = Stub()->Echo(&ctx);
  // Ping-pong: nothing is sent until the previous answer came back, so a proxy that waited for
  // the whole request stream (or buffered the answers) would hang here.
  for (int i = 0; i < 10; ++i) {
    gt::CountReply out;
    out.set_index(i);
    out.set_tag("ping");
    ASSERT_TRUE(stream->Write(out));
    gt::CountReply in;
    ASSERT_TRUE(stream->Read(&in)) << "no echo of message " << i;
    EXPECT_EQ(in.index(), i);
  }
  ASSERT_TRUE(stream->WritesDone());
  gt::CountReply extra;
  EXPECT_FALSE(stream->Read(&extra));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(GatewayStreamingTest, AnErrorMidStreamEndsItWithTheServicesStatus) {
  grpc::ClientContext ctx;
  gt::CountRequest req;
  req.set_tag("grpc-error");
  req.set_count(5);
  req.set_fail_after(2);
  auto reader = Stub()->Count(&ctx, req);
  gt::CountReply m;
  int received = 0;
  while (reader->Read(&m)) ++received;
  grpc::Status status = reader->Finish();
  EXPECT_EQ(received, 2);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "count failed after 2 messages");
  EXPECT_EQ(ErrorInfoOf(status).reason(), "COUNT_FAILED");
}

TEST_F(GatewayStreamingTest, ClientCancellationCancelsTheBackendCall) {
  grpc::ClientContext ctx;
  gt::CountRequest req;
  req.set_tag("grpc-cancel");
  req.set_count(1);
  req.set_hold(true);
  auto reader = Stub()->Count(&ctx, req);
  gt::CountReply m;
  ASSERT_TRUE(reader->Read(&m));
  EXPECT_EQ(backend_->Outcome("grpc-cancel"), "");  // still streaming
  ctx.TryCancel();
  EXPECT_TRUE(Ends("grpc-cancel", "cancelled")) << backend_->Outcome("grpc-cancel");
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(GatewayStreamingTest, AStreamIsNotCutByTheUnaryTimeout) {
  grpc::ClientContext ctx;  // no deadline of its own
  gt::CountRequest req;
  req.set_tag("grpc-long");
  req.set_count(6);
  req.set_interval_ms(300);  // 1.5 s in all, against the gateway's 1 s unary timeout
  auto start = std::chrono::steady_clock::now();
  auto reader = Stub()->Count(&ctx, req);
  gt::CountReply m;
  int received = 0;
  while (reader->Read(&m)) ++received;
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, 6);
  EXPECT_GT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(kUnaryTimeoutMs));
}

TEST_F(GatewayStreamingTest, AMethodsDeadlineOptionBoundsItsStream) {
  grpc::ClientContext ctx;
  gt::CountRequest req;
  req.set_tag("grpc-bounded");
  req.set_count(1);
  req.set_hold(true);  // would never end by itself
  auto reader = Stub()->CountBounded(&ctx, req);
  gt::CountReply m;
  EXPECT_TRUE(reader->Read(&m));
  EXPECT_FALSE(reader->Read(&m));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Ends("grpc-bounded", "cancelled"));
}

TEST_F(GatewayStreamingTest, ALargeStreamPassesThroughWhole) {
  grpc::ClientContext ctx;
  gt::CountRequest req;
  req.set_tag("grpc-large");
  req.set_count(64);
  req.set_padding(256 << 10);  // 16 MiB in all, four times gRPC's default message limit
  auto reader = Stub()->Count(&ctx, req);
  gt::CountReply m;
  int received = 0;
  size_t bytes = 0;
  while (reader->Read(&m)) {
    EXPECT_EQ(m.index(), received);
    ++received;
    bytes += m.padding().size();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, 64);
  EXPECT_EQ(bytes, size_t{64} << 18);
}

// ---- server streaming over REST ----

TEST_F(GatewayStreamingTest, RestAnswersAServerStreamAsNdjson) {
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-ndjson:count?count=3");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->Header("content-type"), "application/x-ndjson");
  EXPECT_EQ(r->Header("transfer-encoding"), "chunked");
  EXPECT_FALSE(r->Header("x-request-id").empty());
  std::vector<std::string> lines = Split(r->body, "\n");
  ASSERT_EQ(lines.size(), 3u) << r->body;
  for (int i = 0; i < 3; ++i) {
    json line = json::parse(lines[i]);
    EXPECT_EQ(line.value("index", 0), i) << lines[i];
    EXPECT_EQ(line.value("tag", ""), "rest-ndjson");
  }
}

TEST_F(GatewayStreamingTest, RestEndsAStreamThatFailsMidwayWithAnErrorLine) {
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-error:count?count=5&failAfter=2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);  // sent with the first message, before the failure
  std::vector<std::string> lines = Split(r->body, "\n");
  ASSERT_EQ(lines.size(), 3u) << r->body;
  EXPECT_EQ(json::parse(lines[1]).value("index", 0), 1);
  json error = json::parse(lines[2]);
  ASSERT_TRUE(error.contains("error")) << lines[2];
  EXPECT_EQ(error["error"]["code"], 400);
  EXPECT_EQ(error["error"]["status"], "FAILED_PRECONDITION");
  EXPECT_EQ(error["error"]["message"], "count failed after 2 messages");
  EXPECT_EQ(ErrorInfo(error).value("reason", ""), "COUNT_FAILED");
}

TEST_F(GatewayStreamingTest, RestAnswersAnErrorBeforeTheFirstMessageWithItsStatus) {
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-early:count?count=5&failAfter=0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(ErrorInfo(Json(*r)).value("reason", ""), "COUNT_FAILED");
  // An empty stream is an empty answer.
  auto empty = HttpCall(ready_->http, "GET", "/v1/test/rest-empty:count?count=0");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->body, "");
}

TEST_F(GatewayStreamingTest, RestSendsServerSentEventsWhenAskedTo) {
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-sse:count?count=3&failAfter=2", "",
                    {{"Accept", "text/event-stream"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->Header("content-type"), "text/event-stream");
  std::vector<std::string> events = Split(r->body, "\n\n");
  ASSERT_EQ(events.size(), 3u) << r->body;
  EXPECT_EQ(events[0], R"(data: {"tag":"rest-sse"})");
  EXPECT_EQ(events[1], R"(data: {"index":1,"tag":"rest-sse"})");
  ASSERT_TRUE(events[2].starts_with("event: error\ndata: {")) << events[2];
  json error = json::parse(events[2].substr(events[2].find('{')));
  EXPECT_EQ(error["error"]["status"], "FAILED_PRECONDITION");
}

TEST_F(GatewayStreamingTest, RestClientThatGoesAwayCancelsTheBackendCall) {
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto head = c->StartRequest("GET", "/v1/test/rest-gone:count?count=1&hold=true");
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->status, 200);
  auto first = c->ReadChunk();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(json::parse(*first).value("tag", ""), "rest-gone");
  EXPECT_EQ(backend_->Outcome("rest-gone"), "");  // held open by the backend
  // The backend is silent now: only the connection's close can tell the gateway.
  c->Close();
  EXPECT_TRUE(Ends("rest-gone", "cancelled")) << backend_->Outcome("rest-gone");
}

TEST_F(GatewayStreamingTest, RestStreamIsNotCutByTheUnaryTimeout) {
  auto start = std::chrono::steady_clock::now();
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-long:count?count=6&intervalMs=300");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(Split(r->body, "\n").size(), 6u) << r->body;
  EXPECT_EQ(r->body.find("error"), std::string::npos) << r->body;
  EXPECT_GT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(kUnaryTimeoutMs));
}

TEST_F(GatewayStreamingTest, RestStreamEndsAtTheMethodsDeadline) {
  auto r = HttpCall(ready_->http, "GET", "/v1/test/rest-bounded:countBounded?count=1&hold=true");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200);
  std::vector<std::string> lines = Split(r->body, "\n");
  ASSERT_EQ(lines.size(), 2u) << r->body;
  json error = json::parse(lines[1]);
  EXPECT_EQ(error["error"]["code"], 504) << lines[1];
  EXPECT_EQ(ErrorInfo(error).value("reason", ""), "BACKEND_DEADLINE_EXCEEDED");
}

TEST_F(GatewayStreamingTest, RestStreamReadsTheBackendOnlyAsFastAsTheClientReads) {
  // 32 messages of 1 MiB, read one chunk at a time: everything arrives, in order, whole.
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto head = c->StartRequest("GET", "/v1/test/rest-big:count?count=32&padding=1048576");
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->status, 200);
  std::string pending;
  int lines = 0;
  for (;;) {
    auto chunk = c->ReadChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (chunk->empty()) break;
    pending += *chunk;
    for (size_t end; (end = pending.find('\n')) != std::string::npos; pending.erase(0, end + 1)) {
      json line = json::parse(pending.substr(0, end));
      EXPECT_EQ(line.value("index", 0), lines);
      EXPECT_EQ(line.value("padding", "").size(), size_t{1} << 20);
      ++lines;
    }
  }
  EXPECT_EQ(lines, 32);
  EXPECT_TRUE(Ends("rest-big", "ok"));
}

// ---- google.api.HttpBody and per-method body limits ----

TEST_F(GatewayStreamingTest, ARawBodyGoesThroughAsItIsWithItsContentType) {
  auto http = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(http.ok()) << http.status();
  // Not JSON, not UTF-8, and above the gateway's default 4 MiB limit: the method allows 6 MiB.
  std::string body(5 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  auto r =
      http->Request("POST", "/v1/test:echoBody", body, {{"Content-Type", "application/x-tar"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "application/x-tar");
  EXPECT_TRUE(r->body == body) << "the bytes came back changed (" << r->body.size() << " bytes)";

  // The OpenAPI document says so: any media type, binary, both ways.
  auto doc = HttpConnection::Connect(ready_->http)->Request("GET", "/api/openapi.json");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const json op = json::parse(doc->body)["paths"]["/v1/test:echoBody"]["post"];
  EXPECT_EQ(op["requestBody"]["content"]["*/*"]["schema"]["format"], "binary") << op.dump();
  EXPECT_EQ(op["responses"]["200"]["content"]["*/*"]["schema"]["format"], "binary") << op.dump();

  auto big = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(big.ok());
  r = big->Request("POST", "/v1/test:echoBody", std::string((6 << 20) + 1, 'x'),
                   {{"Content-Type", "application/octet-stream"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("larger than 6291456 bytes"), std::string::npos) << r->body;
}

TEST_F(GatewayStreamingTest, ARawBodyFillsItsFieldAndAMethodsOwnLimitHolds) {
  auto http = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(http.ok()) << http.status();
  const std::string data(64, '\x02');
  auto r = http->Request("POST", "/v1/test/t1:upload", data, {{"Content-Type", "image/png"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  auto reply = json::parse(r->body);
  EXPECT_EQ(reply["tag"], "t1");  // the path still binds the other fields
  EXPECT_EQ(reply["contentType"], "image/png");
  EXPECT_EQ(reply["size"], "64");
  EXPECT_EQ(reply["byteSum"], "128");

  // One byte over the method's 64: refused before the body is read, naming the limit.
  auto over = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(over.ok());
  r = over->Request("POST", "/v1/test/t2:upload", std::string(65, 'x'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("REQUEST_BODY_TOO_LARGE"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("larger than 64 bytes"), std::string::npos) << r->body;
  // Chunked, with no Content-Length to refuse up front: held to the limit as it arrives.
  auto chunked = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(chunked.ok());
  r = chunked->SendRaw(
      "POST /v1/test/t3:upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "28\r\n" +
      std::string(40, 'a') + "\r\n28\r\n" + std::string(40, 'b') + "\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413) << r->body;
}

TEST_F(GatewayStreamingTest, ARawDownloadIsStreamedAsItsBytesAndCutShortOnAFailure) {
  auto http = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(http.ok()) << http.status();
  auto r = http->Request("GET", "/v1/test/dl:download?chunks=3&chunkBytes=100000");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/csv");  // the first message's
  EXPECT_EQ(r->Header("transfer-encoding"), "chunked");
  std::string expected =
      std::string(100000, '\0') + std::string(100000, '\1') + std::string(100000, '\2');
  EXPECT_TRUE(r->body == expected) << r->body.size() << " bytes";
  EXPECT_TRUE(Ends("dl", "ok"));

  // A failure after the first message: no error line can be added to a raw body, so the
  // connection closes without the last chunk and the client sees a truncated answer.
  auto failing = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(failing.ok());
  auto head =
      failing->StartRequest("GET", "/v1/test/dl-fail:download?chunks=3&chunkBytes=10&failAfter=1");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  auto first = failing->ReadChunk();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, std::string(10, '\0'));
  auto next = failing->ReadChunk();
  EXPECT_FALSE(next.ok()) << "a truncated body must not end like a complete one";
  EXPECT_TRUE(Ends("dl-fail", "failed"));
}

// ---- client-streaming REST uploads ----

// An upload's request head, the body then sent by the caller.
std::string UploadHead(const std::string& method, const std::string& target,
                       const std::string& content_type, std::optional<size_t> content_length) {
  std::string head = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: gw\r\n");
  if (!content_type.empty()) absl::StrAppend(&head, "Content-Type: ", content_type, "\r\n");
  if (content_length) {
    absl::StrAppend(&head, "Content-Length: ", *content_length, "\r\n\r\n");
  } else {
    absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n\r\n");
  }
  return head;
}

// `body` in HTTP chunks of `piece` bytes, with the last chunk.
std::string Chunked(const std::string& body, size_t piece) {
  std::string out;
  for (size_t at = 0; at < body.size(); at += piece) {
    const size_t n = std::min(piece, body.size() - at);
    absl::StrAppend(&out, absl::Hex(n), "\r\n", body.substr(at, n), "\r\n");
  }
  return out + "0\r\n\r\n";
}

// Sends `raw` from another thread while this one reads the answer (the gateway may answer and
// stop reading before the body ends).
absl::StatusOr<HttpResult> SendWhileReading(HttpConnection* c, const std::string& raw) {
  std::thread sender([c, &raw] { c->SendBytes(raw).IgnoreError(); });
  auto r = c->ReadAnswer();
  c->Close();  // ends a send the gateway no longer reads
  sender.join();
  return r;
}

// What an upload of `body` must have produced at the backend.
void ExpectUploaded(const json& reply, const std::string& tag, const std::string& content_type,
                    const std::string& body) {
  EXPECT_EQ(reply.value("tag", ""), tag) << reply.dump();
  EXPECT_EQ(reply.value("contentType", ""), content_type) << reply.dump();
  EXPECT_EQ(reply.value("size", "0"), absl::StrCat(body.size())) << reply.dump();
  EXPECT_EQ(reply.value("checksum", "0"), absl::StrCat(Fnv(kFnvOffset, body))) << reply.dump();
  const size_t messages = std::max<size_t>(1, (body.size() + kUploadChunk - 1) / kUploadChunk);
  EXPECT_EQ(reply.value("messages", 0), static_cast<int>(messages)) << reply.dump();
  EXPECT_LE(std::stoul(reply.value("largestMessage", "0")), kUploadChunk) << reply.dump();
  EXPECT_EQ(reply.value("laterWithOtherFields", 0), 0) << reply.dump();
}

TEST_F(GatewayStreamingTest, UploadsOfEverySizeArriveWholeInMessagesOfAtMostOneChunk) {
  for (size_t size : {size_t{0}, size_t{1}, kUploadChunk, kUploadChunk + 1, 5 * kMiB + 123}) {
    SCOPED_TRACE(absl::StrCat(size, " bytes"));
    const std::string tag = absl::StrCat("up-", size);
    const std::string body = Body(size);
    // Content-Length.
    auto c = HttpConnection::Connect(ready_->http);
    ASSERT_TRUE(c.ok()) << c.status();
    auto r = c->Request("POST", absl::StrCat("/v1/test/", tag, ":uploadStream"), body,
                        {{"Content-Type", "application/x-tar"}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    ExpectUploaded(json::parse(r->body), tag, "application/x-tar", body);
    EXPECT_EQ(backend_->Outcome(tag), "ok");
    // A body read to its end leaves the connection usable.
    auto again = c->Request("GET", "/healthz");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->status, 200);

    // Chunked transfer encoding, in HTTP chunks that do not line up with the gateway's.
    const std::string chunked_tag = tag + "-chunked";
    auto chunked = HttpConnection::Connect(ready_->http);
    ASSERT_TRUE(chunked.ok()) << chunked.status();
    r = chunked->SendRaw(UploadHead("POST", absl::StrCat("/v1/test/", chunked_tag, ":uploadStream"),
                                    "text/csv", std::nullopt) +
                         Chunked(body, 100003));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    ExpectUploaded(json::parse(r->body), chunked_tag, "text/csv", body);
  }
}

TEST_F(GatewayStreamingTest, AnUploadOfBareHttpBodyMessagesTakesThePutBody) {
  const std::string body = Body(2 * kMiB + 7);
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = c->Request("PUT", "/v1/test:uploadRaw", body, {{"Content-Type", "image/png"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  ExpectUploaded(json::parse(r->body), "raw", "image/png", body);

  // The OpenAPI document: any media type, binary.
  auto doc = HttpConnection::Connect(ready_->http)->Request("GET", "/api/openapi.json");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const json op = json::parse(doc->body)["paths"]["/v1/test/{tag}:uploadStream"]["post"];
  EXPECT_EQ(op["requestBody"]["content"]["*/*"]["schema"]["format"], "binary") << op.dump();
}

TEST_F(GatewayStreamingTest, AnUploadOverItsMethodsLimitIs413AndCancelsTheCall) {
  // A Content-Length over the limit: refused before the call starts.
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto r =
      SendWhileReading(&*c, UploadHead("POST", "/v1/test/lim-cl:uploadLimited", "", 3 * kMiB + 1) +
                                Body(3 * kMiB + 1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("larger than 3145728 bytes"), std::string::npos) << r->body;
  EXPECT_EQ(backend_->Received("lim-cl"), 0);

  // Chunked: the limit is found out in the middle; the service must not see a success.
  auto chunked = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  r = SendWhileReading(&*chunked,
                       UploadHead("POST", "/v1/test/lim-chunked:uploadLimited", "", std::nullopt) +
                           Chunked(Body(4 * kMiB), 65536));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413) << r->body;
  auto error = json::parse(r->body);
  EXPECT_EQ(ErrorInfo(error).value("reason", ""), "REQUEST_BODY_TOO_LARGE") << r->body;
  EXPECT_NE(r->body.find("larger than 3145728 bytes"), std::string::npos) << r->body;
  EXPECT_TRUE(Ends("lim-chunked", "cancelled")) << backend_->Outcome("lim-chunked");

  // Exactly the limit passes.
  auto exact = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(exact.ok()) << exact.status();
  const std::string body = Body(3 * kMiB);
  r = exact->Request("POST", "/v1/test/lim-exact:uploadLimited", body);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  ExpectUploaded(json::parse(r->body), "lim-exact", "", body);
}

TEST_F(GatewayStreamingTest, AMalformedChunkedUploadIs400AndCancelsTheCall) {
  // One whole piece (sent to the service), then a chunk size that is not hex.
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = SendWhileReading(
      &*c, UploadHead("POST", "/v1/test/up-malformed:uploadStream", "", std::nullopt) +
               Chunked(Body(kUploadChunk), kUploadChunk / 2).substr(0, 2 * (kUploadChunk / 2 + 9)) +
               "zz\r\nnot a chunk\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(ErrorInfo(json::parse(r->body)).value("reason", ""), "MALFORMED_HTTP_REQUEST")
      << r->body;
  EXPECT_TRUE(Ends("up-malformed", "cancelled")) << backend_->Outcome("up-malformed");
}

TEST_F(GatewayStreamingTest, AServiceFailingMidUploadAnswersWithItsStatus) {
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = SendWhileReading(
      &*c, UploadHead("POST", absl::StrCat("/v1/test/up-fail:uploadStream?failAfterBytes=", kMiB),
                      "text/plain", 8 * kMiB) +
               Body(8 * kMiB));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400) << r->body;
  auto error = json::parse(r->body);
  EXPECT_EQ(error["error"]["status"], "FAILED_PRECONDITION") << r->body;
  EXPECT_EQ(ErrorInfo(error).value("reason", ""), "UPLOAD_FAILED") << r->body;
  EXPECT_EQ(backend_->Outcome("up-fail"), "failed");
  EXPECT_EQ(backend_->Received("up-fail"), static_cast<int64_t>(kMiB));
}

TEST_F(GatewayStreamingTest, AClientLeavingMidUploadCancelsTheCall) {
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendBytes(UploadHead("POST", "/v1/test/up-gone:uploadStream", "", 10 * kMiB) +
                           Body(2 * kMiB))
                  .ok());
  ASSERT_TRUE(WaitFor([] { return backend_->Received("up-gone") >= static_cast<int64_t>(kMiB); },
                      std::chrono::seconds(10)))
      << backend_->Received("up-gone");
  c->Close();
  EXPECT_TRUE(Ends("up-gone", "cancelled")) << backend_->Outcome("up-gone");
}

// The gateway's gauge of uploads in flight, from /metrics (-1 when absent).
int64_t UploadsInFlight(const std::string& http) {
  auto c = HttpConnection::Connect(http);
  if (!c.ok()) return -1;
  auto r = c->Request("GET", "/metrics");
  if (!r.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    int64_t value = 0;
    if (absl::ConsumePrefix(&line, "gateway_uploads_in_flight ") &&
        absl::SimpleAtoi(line, &value)) {
      return value;
    }
  }
  return -1;
}

// Uploads in flight are capped (max_uploads, 3 here): one more is answered 503 with
// Retry-After before its body is read and never reaches the service; once one has finished,
// the next is taken.
TEST_F(GatewayStreamingTest, UploadsOverTheLimitAre503UntilOneHasFinished) {
  const std::string http = ready_->http;
  ASSERT_TRUE(WaitFor([&] { return UploadsInFlight(http) == 0; }, std::chrono::seconds(10)))
      << "uploads of earlier tests still in flight: " << UploadsInFlight(http);
  std::vector<HttpConnection> held;
  for (int i = 0; i < 3; ++i) {
    const std::string tag = absl::StrCat("up-held-", i);
    auto c = HttpConnection::Connect(http);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendBytes(UploadHead("POST", absl::StrCat("/v1/test/", tag, ":uploadStream"), "",
                                        10 * kMiB) +
                             Body(kMiB))
                    .ok());
    ASSERT_TRUE(WaitFor([&] { return backend_->Received(tag) >= static_cast<int64_t>(kMiB); },
                        std::chrono::seconds(10)))
        << tag << " received " << backend_->Received(tag);
    held.push_back(std::move(*c));
  }
  EXPECT_EQ(UploadsInFlight(http), 3);
  auto over = HttpConnection::Connect(http);
  ASSERT_TRUE(over.ok()) << over.status();
  auto refused = SendWhileReading(
      &*over, UploadHead("POST", "/v1/test/up-over:uploadStream", "", 4 * kMiB) + Body(4 * kMiB));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->Header("retry-after"), "1");
  EXPECT_NE(refused->body.find("TOO_MANY_UPLOADS"), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find("3 uploads"), std::string::npos) << refused->body;
  EXPECT_EQ(backend_->Received("up-over"), 0);

  held[0].Close();
  EXPECT_TRUE(Ends("up-held-0", "cancelled")) << backend_->Outcome("up-held-0");
  ASSERT_TRUE(WaitFor([&] { return UploadsInFlight(http) == 2; }, std::chrono::seconds(10)));
  auto next = HttpConnection::Connect(http);
  ASSERT_TRUE(next.ok()) << next.status();
  const std::string body = Body(kUploadChunk + 5);
  auto taken = next->Request("POST", "/v1/test/up-next:uploadStream", body,
                             {{"Content-Type", "application/x-tar"}});
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_EQ(taken->status, 200) << taken->body;
  ExpectUploaded(json::parse(taken->body), "up-next", "application/x-tar", body);
  for (size_t i = 1; i < held.size(); ++i) held[i].Close();
  EXPECT_TRUE(WaitFor([&] { return UploadsInFlight(http) == 0; }, std::chrono::seconds(10)));
}

TEST_F(GatewayStreamingTest, AFastUploadToASlowServiceIsHeldBackInBoundedMemory) {
  // 320 MiB, generated as it is sent, into a service that takes one message per permit.
  constexpr size_t kSize = 320 * kMiB;
  constexpr size_t kBlock = 256 << 10;
  // What may be between the client and the service at any time: kernel socket buffers on both
  // sides, the gateway's pieces and gRPC's flow-control window. Far below the body.
  constexpr int64_t kInFlightBound = 64 * kMiB;
  const pid_t gateway_pid = gateway_->pid();
  const size_t rss_before = ResidentBytes(gateway_pid);
  ASSERT_GT(rss_before, 0u);
  auto c = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendBytes(UploadHead("POST", "/v1/test/up-slow:uploadStream?slow=true",
                                      "application/octet-stream", kSize))
                  .ok());
  std::atomic<size_t> sent{0};
  std::atomic<uint64_t> checksum{0};
  std::thread sender([&] {
    uint64_t hash = kFnvOffset;
    for (size_t at = 0; at < kSize; at += kBlock) {
      std::string block = Body(kBlock, at);
      hash = Fnv(hash, block);
      if (!c->SendBytes(block).ok()) return;
      sent.fetch_add(kBlock);
    }
    checksum.store(hash);
  });
  size_t rss_peak = rss_before;
  int64_t most_in_flight = 0;
  while (backend_->Outcome("up-slow").empty()) {
    backend_->Grant(8);
    ASSERT_TRUE(
        WaitFor([] { return backend_->Permits() == 0 || !backend_->Outcome("up-slow").empty(); },
                std::chrono::seconds(30)))
        << "the service stopped receiving at " << backend_->Received("up-slow");
    rss_peak = std::max(rss_peak, ResidentBytes(gateway_pid));
    most_in_flight =
        std::max(most_in_flight, static_cast<int64_t>(sent.load()) - backend_->Received("up-slow"));
  }
  sender.join();
  auto r = c->ReadAnswer();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  auto reply = json::parse(r->body);
  EXPECT_EQ(reply.value("size", "0"), absl::StrCat(kSize));
  EXPECT_EQ(reply.value("checksum", "0"), absl::StrCat(checksum.load()));
  const size_t growth = rss_peak - rss_before;
  std::cout << "gateway RSS " << rss_before / kMiB << " MiB before, peak " << rss_peak / kMiB
            << " MiB (+" << growth / 1024 << " KiB) over a " << kSize / kMiB
            << " MiB upload; at most " << most_in_flight / 1024
            << " KiB sent but not yet received by the service" << std::endl;
  RecordProperty("gateway_rss_growth_bytes", static_cast<int>(growth));
  EXPECT_LT(growth, 32 * kMiB);
  EXPECT_LT(most_in_flight, kInFlightBound);
  backend_->Grant(-backend_->Permits());
}

}  // namespace
}  // namespace submarine::testing
