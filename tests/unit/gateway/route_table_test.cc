// Which methods become REST routes and which routes are served without a token: decided by the
// methods' proto options (auth_exempt, internal_only), never per endpoint.

#include "gateway/route_table.h"

#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/status/status.h"
#include "google/api/annotations.pb.h"
#include "submarine/common/v1/options.pb.h"

namespace submarine::gateway {
namespace {

const Route* FindRoute(const RouteTable& table, const std::string& method,
                       const std::string& path) {
  RouteTable::Match match;
  std::vector<std::string> allowed;
  if (table.Find(method, path, &match, &allowed) != RouteTable::Outcome::kMatched) return nullptr;
  return match.route;
}

TEST(RouteTableAuthTest, LoginAndTokenRoutesAreTheOnlyExemptOnes) {
  auto table = RouteTable::Build({"submarine.permission.v1.IdentityService",
                                  "submarine.permission.v1.SubmarineAuthApi",
                                  "submarine.environment.v1.EnvironmentService"});
  ASSERT_TRUE(table.ok()) << table.status();
  std::vector<std::string> exempt;
  for (const auto& route : table->routes()) {
    if (route->auth_exempt) exempt.push_back(route->label);
  }
  std::sort(exempt.begin(), exempt.end());
  EXPECT_EQ(exempt, (std::vector<std::string>{"POST /api/auth/login", "POST /api/auth/token",
                                              "POST /v1/auth:login", "POST /v1/auth:refresh"}));
  const Route* info = FindRoute(*table, "GET", "/api/sys/user/info");
  ASSERT_NE(info, nullptr);
  EXPECT_FALSE(info->auth_exempt);
  for (const auto& route : table->routes()) {
    EXPECT_NE(route->grpc_method, "/submarine.permission.v1.IdentityService/GetAuthState");
  }
}

// A method that is internal-only gets no route even when it carries an http rule.
TEST(RouteTableAuthTest, InternalOnlyMethodsGetNoRouteEvenWithAnHttpRule) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("gateway_route_test.proto");
  file.set_package("gwtest");
  file.set_syntax("proto3");
  auto* req = file.add_message_type();
  req->set_name("Req");
  auto* field = req->add_field();
  field->set_name("name");
  field->set_number(1);
  field->set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
  field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  auto* service = file.add_service();
  service->set_name("Things");
  auto add_method = [&](const std::string& name, const std::string& path, bool internal,
                        bool exempt) {
    auto* m = service->add_method();
    m->set_name(name);
    m->set_input_type(".gwtest.Req");
    m->set_output_type(".gwtest.Req");
    m->mutable_options()->MutableExtension(google::api::http)->set_get(path);
    if (internal) m->mutable_options()->SetExtension(submarine::common::v1::internal_only, true);
    if (exempt) m->mutable_options()->SetExtension(submarine::common::v1::auth_exempt, true);
  };
  add_method("GetThing", "/v1/{name=things/*}", false, false);
  add_method("GetSecretThing", "/v1/secret/{name=things/*}", true, false);
  add_method("GetPublicThing", "/v1/public/{name=things/*}", false, true);
  google::protobuf::DescriptorPool pool;
  ASSERT_NE(pool.BuildFile(file), nullptr);

  auto table = RouteTable::Build({"gwtest.Things"}, &pool);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->routes().size(), 2u);
  const Route* thing = FindRoute(*table, "GET", "/v1/things/a");
  ASSERT_NE(thing, nullptr);
  EXPECT_EQ(thing->grpc_method, "/gwtest.Things/GetThing");
  EXPECT_FALSE(thing->auth_exempt);
  EXPECT_EQ(FindRoute(*table, "GET", "/v1/secret/things/a"), nullptr);
  const Route* pub = FindRoute(*table, "GET", "/v1/public/things/a");
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(pub->auth_exempt);
}

// A server stream is answered over REST (NDJSON or SSE), a client stream only as a streamed
// upload of a google.api.HttpBody (the request, or its one HttpBody field named by body): a
// request stream has no JSON form. A bidi stream gets no route; a client stream that is not an
// upload is a declaration error.
class RouteTableStreamTest : public ::testing::Test {
 protected:
  RouteTableStreamTest() {
    file_.set_name("gateway_route_stream_test.proto");
    file_.set_package("gwstream");
    file_.set_syntax("proto3");
    file_.add_dependency("google/api/httpbody.proto");
    auto* req = file_.add_message_type();
    req->set_name("Req");
    AddField(req, "name", 1, google::protobuf::FieldDescriptorProto::TYPE_STRING, "");
    auto* chunk = file_.add_message_type();
    chunk->set_name("Chunk");
    AddField(chunk, "name", 1, google::protobuf::FieldDescriptorProto::TYPE_STRING, "");
    AddField(chunk, "file", 2, google::protobuf::FieldDescriptorProto::TYPE_MESSAGE,
             ".google.api.HttpBody");
    service_ = file_.add_service();
    service_->set_name("Streams");
  }

  static void AddField(google::protobuf::DescriptorProto* message, const std::string& name,
                       int number, google::protobuf::FieldDescriptorProto::Type type,
                       const std::string& type_name) {
    auto* field = message->add_field();
    field->set_name(name);
    field->set_number(number);
    field->set_type(type);
    if (!type_name.empty()) field->set_type_name(type_name);
    field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  }

  void AddMethod(const std::string& name, const std::string& input, const std::string& path,
                 const std::string& body, bool client_streaming, bool server_streaming) {
    auto* m = service_->add_method();
    m->set_name(name);
    m->set_input_type(input);
    m->set_output_type(".gwstream.Req");
    m->set_client_streaming(client_streaming);
    m->set_server_streaming(server_streaming);
    auto* rule = m->mutable_options()->MutableExtension(google::api::http);
    if (body.empty()) {
      rule->set_get(path);
    } else {
      rule->set_post(path);
      rule->set_body(body);
    }
  }

  absl::StatusOr<RouteTable> Build() {
    if (pool_.BuildFile(file_) == nullptr) return absl::InternalError("the file does not build");
    return RouteTable::Build({"gwstream.Streams"}, &pool_);
  }

  google::protobuf::FileDescriptorProto file_;
  google::protobuf::ServiceDescriptorProto* service_ = nullptr;
  // The generated pool underneath, for google/api/httpbody.proto.
  google::protobuf::DescriptorPool pool_{google::protobuf::DescriptorPool::generated_pool()};
};

TEST_F(RouteTableStreamTest, ServerStreamsAndHttpBodyUploadsGetRoutesBidiStreamsDoNot) {
  AddMethod("Watch", ".gwstream.Req", "/v1/{name=things/*}:watch", "", false, true);
  AddMethod("Put", ".gwstream.Chunk", "/v1/{name=things/*}:put", "file", true, false);
  AddMethod("PutRaw", ".google.api.HttpBody", "/v1/things:putRaw", "*", true, false);
  AddMethod("Chat", ".gwstream.Req", "/v1/{name=things/*}:chat", "", true, true);
  auto table = Build();
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->routes().size(), 3u);
  const Route* watch = FindRoute(*table, "GET", "/v1/things/a:watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->method->server_streaming());
  EXPECT_FALSE(watch->streamed_request);
  const Route* put = FindRoute(*table, "POST", "/v1/things/a:put");
  ASSERT_NE(put, nullptr);
  EXPECT_TRUE(put->streamed_request);
  EXPECT_TRUE(put->raw_request);
  const Route* put_raw = FindRoute(*table, "POST", "/v1/things:putRaw");
  ASSERT_NE(put_raw, nullptr);
  EXPECT_TRUE(put_raw->streamed_request);
  EXPECT_EQ(FindRoute(*table, "GET", "/v1/things/a:chat"), nullptr);
}

TEST_F(RouteTableStreamTest, AClientStreamThatIsNotAnHttpBodyUploadIsRefused) {
  AddMethod("Upload", ".gwstream.Chunk", "/v1/{name=things/*}:upload", "*", true, false);
  auto table = Build();
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(table.status().message().find("gwstream.Streams.Upload"), std::string::npos)
      << table.status();
  EXPECT_NE(table.status().message().find("client-streaming"), std::string::npos) << table.status();
}

}  // namespace
}  // namespace submarine::gateway
