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

// A server stream is answered over REST (NDJSON or SSE), a client or bidi stream is not: a request
// stream has no JSON form.
TEST(RouteTableAuthTest, ServerStreamingMethodsGetRoutesClientStreamingOnesDoNot) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("gateway_route_stream_test.proto");
  file.set_package("gwstream");
  file.set_syntax("proto3");
  auto* req = file.add_message_type();
  req->set_name("Req");
  auto* field = req->add_field();
  field->set_name("name");
  field->set_number(1);
  field->set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
  field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  auto* service = file.add_service();
  service->set_name("Streams");
  auto add_method = [&](const std::string& name, const std::string& path, bool client_streaming,
                        bool server_streaming) {
    auto* m = service->add_method();
    m->set_name(name);
    m->set_input_type(".gwstream.Req");
    m->set_output_type(".gwstream.Req");
    m->set_client_streaming(client_streaming);
    m->set_server_streaming(server_streaming);
    m->mutable_options()->MutableExtension(google::api::http)->set_get(path);
  };
  add_method("Watch", "/v1/{name=things/*}:watch", false, true);
  add_method("Upload", "/v1/{name=things/*}:upload", true, false);
  add_method("Chat", "/v1/{name=things/*}:chat", true, true);
  google::protobuf::DescriptorPool pool;
  ASSERT_NE(pool.BuildFile(file), nullptr);

  auto table = RouteTable::Build({"gwstream.Streams"}, &pool);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->routes().size(), 1u);
  const Route* watch = FindRoute(*table, "GET", "/v1/things/a:watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->method->server_streaming());
  EXPECT_EQ(FindRoute(*table, "GET", "/v1/things/a:upload"), nullptr);
  EXPECT_EQ(FindRoute(*table, "GET", "/v1/things/a:chat"), nullptr);
}

}  // namespace
}  // namespace submarine::gateway
