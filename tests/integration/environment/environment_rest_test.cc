// The environment service behind the real gateway, over REST: the AIP face (/v1/...) and the
// Apache Submarine face (/api/v1/environment) with its envelope and messages.
#include <gtest/gtest.h>

#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "submarine/common/v1/pagination.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/support/http_client.h"

namespace submarine::testing {
namespace {

using nlohmann::json;

class EnvironmentRestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartEnvironment();
    ASSERT_TRUE(p.ok()) << p.status();
    env_ = std::move(*p);
    auto st = StartGateway(env_.get());
    ASSERT_TRUE(st.ok()) << st;
    auto conn = HttpConnection::Connect(env_->gateway_ready.http);
    ASSERT_TRUE(conn.ok()) << conn.status();
    http_ = std::move(*conn);
  }

  // One call on the test's keep-alive connection; the body parsed as JSON (null if empty).
  std::pair<int, json> Call(const std::string& method, const std::string& target,
                            const std::string& body = "",
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!body.empty() && headers.empty()) headers.push_back({"Content-Type", "application/json"});
    auto r = http_.Request(method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {0, nullptr};
    json j = r->body.empty() ? json(nullptr) : json::parse(r->body, nullptr, false);
    return {r->status, j};
  }

  static std::string ErrorField(const json& error) {
    for (const auto& d : error["error"]["details"]) {
      if (d.contains("metadata") && d["metadata"].contains("field")) {
        return d["metadata"]["field"].get<std::string>();
      }
    }
    return "";
  }

  std::unique_ptr<EnvironmentProcess> env_;
  HttpConnection http_;
};

constexpr char kCollection[] = "/v1/projects/default/environments";

TEST_F(EnvironmentRestTest, CrudThroughTheGateway) {
  auto [code, created] = Call("POST", absl::StrCat(kCollection, "?environmentId=rest-env"),
                              R"({"image":"python:3.11","displayName":"REST",
                                  "kernelSpec":{"name":"py","pipDependencies":["numpy"]},
                                  "labels":{"team":"a"}})");
  ASSERT_EQ(code, 200) << created;
  EXPECT_EQ(created["name"], "projects/default/environments/rest-env");
  EXPECT_EQ(created["kernelSpec"]["pipDependencies"][0], "numpy");
  std::string etag = created["etag"];

  auto [gcode, got] = Call("GET", absl::StrCat(kCollection, "/rest-env"));
  ASSERT_EQ(gcode, 200);
  EXPECT_EQ(got, created);

  auto [pcode, patched] =
      Call("PATCH", absl::StrCat(kCollection, "/rest-env?updateMask=description,labels"),
           absl::StrCat(R"({"description":"patched","labels":{"team":"b"},"etag":")", etag,
                        R"("})"));
  ASSERT_EQ(pcode, 200) << patched;
  EXPECT_EQ(patched["description"], "patched");
  EXPECT_EQ(patched["labels"]["team"], "b");
  EXPECT_EQ(patched["displayName"], "REST");

  // The old etag now conflicts: 409 ABORTED, nothing changed.
  auto [ccode, conflict] =
      Call("PATCH", absl::StrCat(kCollection, "/rest-env?updateMask=description"),
           absl::StrCat(R"({"description":"lost update","etag":")", etag, R"("})"));
  EXPECT_EQ(ccode, 409);
  EXPECT_EQ(conflict["error"]["status"], "ABORTED");
  auto [dcode, dconflict] = Call("DELETE", absl::StrCat(kCollection, "/rest-env?etag=", etag));
  EXPECT_EQ(dcode, 409);

  auto [delcode, deleted] = Call("DELETE", absl::StrCat(kCollection, "/rest-env"));
  ASSERT_EQ(delcode, 200);
  EXPECT_EQ(deleted["environment"]["description"], "patched");
  auto [ncode, missing] = Call("GET", absl::StrCat(kCollection, "/rest-env"));
  EXPECT_EQ(ncode, 404);
  EXPECT_EQ(missing["error"]["status"], "NOT_FOUND");
  EXPECT_EQ(missing["error"]["details"][0]["reason"], "RESOURCE_NOT_FOUND");
}

TEST_F(EnvironmentRestTest, ErrorPathsAreClearAndLoseNothing) {
  ASSERT_EQ(Call("POST", absl::StrCat(kCollection, "?environmentId=keep"),
                 R"({"image":"python:3.11"})").first, 200);
  struct Case {
    std::string method, target, body;
    int status;
    std::string field;  // expected ErrorInfo metadata.field, or "" to skip
  };
  std::vector<Case> cases = {
      {"POST", absl::StrCat(kCollection, "?environmentId=x1"), R"({"displayName":"no image"})",
       400, "environment.image"},
      {"POST", absl::StrCat(kCollection, "?environmentId=x2"), R"({"image":"a","colour":"red"})",
       400, "colour"},
      {"POST", absl::StrCat(kCollection, "?environmentId=x3"), R"({"image": )", 400, ""},
      {"POST", absl::StrCat(kCollection, "?environmentId=UPPER"), R"({"image":"a"})", 400,
       "environment_id"},
      {"POST", absl::StrCat(kCollection, "?environmentId=keep"), R"({"image":"a"})", 409, ""},
      {"POST", "/v1/projects/Nope/environments?environmentId=x4", R"({"image":"a"})", 400,
       "parent"},
      {"POST", absl::StrCat(kCollection, "?environmentId=x5"),
       R"({"image":"a","labels":{"Bad Key":"v"}})", 400, "environment.labels.Bad Key"},
      {"GET", absl::StrCat(kCollection, "?pageSize=-1"), "", 400, "page_size"},
      {"GET", absl::StrCat(kCollection, "?pageSize=abc"), "", 400, ""},
      {"GET", absl::StrCat(kCollection, "?filter=colour%3Dred"), "", 400, "filter"},
      {"GET", absl::StrCat(kCollection, "?pageToken=garbage"), "", 400, "page_token"},
      {"PATCH", absl::StrCat(kCollection, "/keep?updateMask=uid"), R"({"uid":"x"})", 400,
       "update_mask"},
      {"PATCH", absl::StrCat(kCollection, "/keep?updateMask=image"), R"({"image":""})", 400,
       "environment.image"},
      {"GET", absl::StrCat(kCollection, "/ghost"), "", 404, ""},
      {"DELETE", absl::StrCat(kCollection, "/ghost"), "", 404, ""},
  };
  for (const auto& c : cases) {
    auto [code, body] = Call(c.method, c.target, c.body);
    EXPECT_EQ(code, c.status) << c.method << " " << c.target << ": " << body;
    ASSERT_TRUE(body.contains("error")) << body;
    EXPECT_EQ(body["error"]["code"], c.status);
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
    if (!c.field.empty()) {
      EXPECT_EQ(ErrorField(body), c.field) << c.target << ": " << body;
    }
  }
  // Hostile YAML bodies are refused or read as text; the gateway keeps serving.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += absl::StrCat("a", i, ": &a", i, " [");
    for (int k = 0; k < 10; ++k) absl::StrAppend(&bomb, k ? ", " : "", "*a", i - 1);
    bomb += "]\n";
  }
  for (const std::string& yaml : {bomb, std::string(200, '[') + std::string(200, ']'),
                                   "image: " + std::string(100000, '9') + "\n"}) {
    auto [ycode, ybody] = Call("POST", absl::StrCat(kCollection, "?environmentId=yaml-x"), yaml,
                               {{"Content-Type", "application/yaml"}});
    EXPECT_EQ(ycode, 400) << ybody;
  }
  // A number out of any numeric range stays the text it was written as.
  auto [ncode, nbody] = Call("POST", absl::StrCat(kCollection, "?environmentId=yaml-num"),
                             "image: 1.0e999\n", {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(ncode, 200) << nbody;
  EXPECT_EQ(nbody["image"], "1.0e999");
  ASSERT_EQ(Call("DELETE", absl::StrCat(kCollection, "/yaml-num")).first, 200);
  auto [code, list] = Call("GET", absl::StrCat(kCollection, "?pageSize=1000"));
  ASSERT_EQ(code, 200);
  std::set<std::string> names;
  for (const auto& e : list["environments"]) names.insert(e["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"projects/default/environments/keep",
                                          "projects/default/environments/notebook-env",
                                          "projects/default/environments/notebook-gpu-env"}));
  auto [kcode, keep] = Call("GET", absl::StrCat(kCollection, "/keep"));
  EXPECT_EQ(keep["image"], "python:3.11");
}

// What held up when the stack was attacked, and must keep holding: malformed requests of every
// kind — bodies, ids, query values, YAML, invalid UTF-8, NULs, injection attempts and page tokens
// crafted to carry instants PostgreSQL cannot represent — get an answer, and no answer carries
// database or C++ text. Inputs are lowercase where they mimic SQL so that an echo of the input
// (which errors may quote, bounded) is never mistaken for a leak.
TEST_F(EnvironmentRestTest, MalformedRequestsLeakNoSqlOrCppText) {
  for (const char* id : {"probe-a", "probe-b", "probe-c"}) {
    ASSERT_EQ(Call("POST", absl::StrCat(kCollection, "?environmentId=", id),
                   R"({"image":"python:3.11","labels":{"k":"v"}})")
                  .first,
              200);
  }
  // A real page token, then copies of it bound to the same query that carry other positions.
  auto [pcode, page] = Call("GET", absl::StrCat(kCollection, "?pageSize=1"));
  ASSERT_EQ(pcode, 200) << page;
  std::string real_token = page.value("nextPageToken", "");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(real_token, &raw)) << real_token;
  submarine::common::v1::PageToken token;
  ASSERT_TRUE(token.ParseFromString(raw));
  std::vector<std::string> crafted_tokens;
  for (int64_t seconds : {int64_t{-9000000000000}, int64_t{-62135596801}, int64_t{9000000000000},
                          int64_t{253402300800}, int64_t{0}, int64_t{-1}}) {
    for (int64_t after_id : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::max()}) {
      submarine::common::v1::PageToken t = token;
      t.mutable_after_time()->set_seconds(seconds);
      t.mutable_after_time()->set_nanos(seconds == 0 ? -5 : 999999999);
      t.set_after_id(after_id);
      crafted_tokens.push_back(absl::WebSafeBase64Escape(t.SerializeAsString()));
    }
  }

  const std::vector<std::string> ids = {"",
                                        "UPPER",
                                        std::string(300, 'a'),
                                        "%00",
                                        "a%00b",
                                        "%C0%80",
                                        "%FF%FE",
                                        "%E2%80%AE",
                                        "'%20or%20'1'%3D'1",
                                        "x%3B%20drop%20table%20environments%3B--",
                                        "..%2F..%2Fetc%2Fpasswd",
                                        "%27",
                                        "%22",
                                        "%5C",
                                        "a%0Ab",
                                        "%F0%9F%99%82",
                                        "-",
                                        "a--b",
                                        "1e9999",
                                        "%25s%25n"};
  const std::vector<std::string> queries = {
      "pageSize=-1",
      "pageSize=abc",
      "pageSize=99999999999999999999",
      "pageSize=1e3",
      "pageSize=%00",
      "pageToken=garbage",
      "pageToken=%FF",
      "pageToken=" + std::string(2000, 'A'),
      "filter=labels.",
      "filter=name%20%3D%20",
      "filter=name%20%3D%20%22x",
      "filter=(((",
      "filter=labels.k%3A*",
      "filter=name%20%3D%20%22'%3B%20drop%20table%20x%3B%20--%22",
      "filter=%FF%FE",
      "filter=" + std::string(5000, 'f'),
      "filter=labels.%00%3D%22v%22",
      "filter=labels.k%20%3D%20%22%5C%22",
      "filter=image%20%3D%20%22%25%22",
      "filter=name%20%3D%20%22a%22%20or%201%3D1",
      "orderBy=create_time%20desc%3B%20drop",
      "orderBy=" + std::string(4000, 'o'),
      "orderBy=%FF",
      "orderBy=name%20sideways",
      "updateMask=%00",
      "updateMask=uid,etag",
      "updateMask=labels.%0A",
      "etag=%FF",
      "etag=%22'%22",
      "environmentId=%00",
      "environmentId=a%20b",
      "requestId=%00",
      "requestId=" + std::string(500, 'r'),
      "unknownParam=1",
      "%zz=1",
      "=&&==",
      "a=%",
      "labels.k=v"};
  const std::vector<std::string> json_bodies = {
      "{",
      "[]",
      "null",
      "\"text\"",
      "42",
      R"({"image": 5})",
      R"({"image": ["a"]})",
      R"({"image": {"nested": true}})",
      R"({"labels": {"a": 1}})",
      R"({"labels": "x"})",
      R"({"image": "a\u0000b"})",
      R"({"displayName": "\ud800"})",
      R"({"image": "a", "uid": 7})",
      R"({"kernelSpec": {"pipDependencies": {}}})",
      R"({"etag": 1, "image": "a"})",
      R"({"image": "a", "createTime": "yesterday"})",
      R"({"image": "a", "createTime": "0000-01-01T00:00:00Z"})",
      R"({"image": "a", "labels": {"k": "'; drop table environments; --"}})",
      R"({"image": "a", "labels": {"": "v"}})",
      R"({"image": 1e999})",
      std::string(5000, '[') + std::string(5000, ']'),
      R"({"image": "a",})",
      "{\"image\":\"a\"}x",
      R"({"image": "a", "name": "projects/other/environments/x"})",
      std::string("{\"image\": \"") + std::string(70000, 'i') + "\"}"};
  const std::vector<std::string> yaml_bodies = {"a: [",
                                                ": :",
                                                "- - -\n\t- x",
                                                "key: \"unterminated",
                                                "&a [*a, *b]",
                                                "? [a]\n: b",
                                                "image: !!binary AAAA",
                                                "image: !<tag:yaml.org,2002:str> a\n  bad indent",
                                                "{{{{",
                                                "image: a\nimage: b",
                                                "%YAML 9.9\n---\nimage: a",
                                                "image: |\n x\n  y\n z"};

  struct Probe {
    std::string method, target, body, content_type;
  };
  std::vector<Probe> probes;
  const std::string item = std::string(kCollection) + "/";
  for (const std::string& id : ids) {
    for (const char* method : {"GET", "DELETE"}) probes.push_back({method, item + id, "", ""});
    probes.push_back(
        {"PATCH", item + id + "?updateMask=image", R"({"image":"a"})", "application/json"});
    probes.push_back({"POST", absl::StrCat(kCollection, "?environmentId=", id), R"({"image":"a"})",
                      "application/json"});
    probes.push_back({"GET", "/api/v1/environment/" + id, "", ""});
    probes.push_back({"DELETE", "/api/v1/environment/" + id, "", ""});
    probes.push_back({"GET", "/v1/projects/" + id + "/environments", "", ""});
  }
  for (const std::string& q : queries) {
    probes.push_back({"GET", absl::StrCat(kCollection, "?", q), "", ""});
    probes.push_back({"PATCH", item + "probe-a?" + q, R"({"image":"b"})", "application/json"});
    probes.push_back({"DELETE", item + "probe-b?" + q, "", ""});
    probes.push_back(
        {"POST", absl::StrCat(kCollection, "?", q), R"({"image":"a"})", "application/json"});
    probes.push_back({"GET", "/api/v1/environment?" + q, "", ""});
  }
  for (const std::string& t : crafted_tokens) {
    probes.push_back({"GET", absl::StrCat(kCollection, "?pageSize=1&pageToken=", t), "", ""});
    probes.push_back(
        {"GET",
         absl::StrCat(kCollection, "?pageSize=1&orderBy=create_time%20desc", "&pageToken=", t), "",
         ""});
  }
  for (const std::string& b : json_bodies) {
    probes.push_back(
        {"POST", absl::StrCat(kCollection, "?environmentId=body-probe"), b, "application/json"});
    probes.push_back(
        {"PATCH", item + "probe-c?updateMask=image,labels,display_name", b, "application/json"});
    probes.push_back({"POST", "/api/v1/environment", b, "application/json"});
    probes.push_back({"PATCH", "/api/v1/environment/probe-c", b, "application/json"});
  }
  for (const std::string& b : yaml_bodies) {
    probes.push_back(
        {"POST", absl::StrCat(kCollection, "?environmentId=yaml-probe"), b, "application/yaml"});
    probes.push_back({"PATCH", item + "probe-c?updateMask=image", b, "application/x-yaml"});
  }
  for (const char* method : {"PUT", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"}) {
    probes.push_back({method, item + "probe-a", R"({"image":"a"})", "application/json"});
  }
  for (const char* type : {"text/plain", "application/xml", "multipart/form-data; boundary=x",
                           "application/json; charset=latin1", ""}) {
    probes.push_back(
        {"POST", absl::StrCat(kCollection, "?environmentId=type-probe"), "<image>a</image>", type});
  }

  // Text of PostgreSQL, libpqxx, libpq, yaml-cpp and the C++ runtime. Checked in the raw body and
  // in the decoded error message (JSON escapes quotes).
  const std::vector<std::string> markers = {"pqxx",
                                            "ERROR:",
                                            "DETAIL:",
                                            "HINT:",
                                            "LINE 1",
                                            "SELECT",
                                            "INSERT",
                                            "UPDATE ",
                                            "DELETE FROM",
                                            "std::",
                                            "terminate called",
                                            "syntax error",
                                            "sqlstate",
                                            "SQLSTATE",
                                            "database error",
                                            "yaml-cpp",
                                            "libpq",
                                            "basic_string",
                                            "what()",
                                            "exception",
                                            "Exception",
                                            "timestamp out of range",
                                            "invalid input syntax",
                                            "violates",
                                            "constraint",
                                            "relation \"",
                                            "column \"",
                                            "schema_migrations",
                                            "environments_",
                                            "127.0.0.1:",
                                            "postgres",
                                            "PostgreSQL",
                                            "abort",
                                            "segfault",
                                            "nlohmann",
                                            "absl::",
                                            "google::"};
  int answered = 0, server_errors = 0;
  std::map<int, int> by_status;
  for (const Probe& p : probes) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!p.content_type.empty()) headers.push_back({"Content-Type", p.content_type});
    auto r = HttpCall(env_->gateway_ready.http, p.method, p.target, p.body, headers);
    ASSERT_TRUE(r.ok()) << p.method << " " << p.target.substr(0, 200) << ": " << r.status();
    ++answered;
    ++by_status[r->status];
    std::string decoded;
    json body = json::parse(r->body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      decoded = body["error"].value("message", "") + body["error"]["details"].dump();
    } else if (body.is_object() && body.contains("message") && body["message"].is_string()) {
      decoded = body["message"].get<std::string>();
    }
    for (const std::string& marker : markers) {
      EXPECT_EQ(r->body.find(marker), std::string::npos)
          << "\"" << marker << "\" in the answer to " << p.method << " " << p.target.substr(0, 200)
          << ": " << r->body.substr(0, 500);
      EXPECT_EQ(decoded.find(marker), std::string::npos)
          << "\"" << marker << "\" in the answer to " << p.method << " " << p.target.substr(0, 200)
          << ": " << decoded.substr(0, 500);
    }
    if (r->status >= 500) {
      ++server_errors;
      // A server fault answers the fixed text naming the request, nothing else.
      EXPECT_NE(r->body.find("internal error"), std::string::npos)
          << p.method << " " << p.target.substr(0, 200) << ": " << r->body.substr(0, 500);
    }
  }
  std::string summary;
  for (const auto& [status, count] : by_status) absl::StrAppend(&summary, status, "x", count, " ");
  std::cout << answered << " malformed requests answered: " << summary << "\n";
  EXPECT_GE(answered, 500);
  auto health = HttpCall(env_->gateway_ready.http, "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200) << "the gateway stopped serving";
  std::cout << server_errors << " of them were server faults\n";
}

TEST_F(EnvironmentRestTest, PaginatesAThousandItemsAndFilters) {
  for (int i = 0; i < 1000; ++i) {
    auto [code, body] =
        Call("POST", absl::StrCat(kCollection, "?environmentId=item-", i),
             absl::StrCat(R"({"image":"img:)", i % 3, R"(","labels":{"mod3":"m)", i % 3, R"("}})"));
    ASSERT_EQ(code, 200) << body;
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    std::string target = absl::StrCat(kCollection, "?pageSize=100&filter=name%3Ditem-*");
    if (!token.empty()) absl::StrAppend(&target, "&pageToken=", token);
    auto [code, page] = Call("GET", target);
    ASSERT_EQ(code, 200) << page;
    for (const auto& e : page["environments"]) seen.push_back(e["name"]);
    token = page.value("nextPageToken", "");
    ++pages;
  } while (!token.empty() && pages < 50);
  EXPECT_EQ(pages, 10);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1000u);
  EXPECT_EQ(seen.front(), "projects/default/environments/item-0");
  EXPECT_EQ(seen.back(), "projects/default/environments/item-999");

  auto [code, filtered] = Call(
      "GET", absl::StrCat(kCollection, "?pageSize=1000&filter=labels.mod3%3Dm1%20AND%20image%3D%22img%3A1%22"));
  ASSERT_EQ(code, 200);
  EXPECT_EQ(filtered["environments"].size(), 333u);
  auto [dcode, desc] = Call("GET", absl::StrCat(kCollection, "?pageSize=1&orderBy=create_time%20desc"));
  ASSERT_EQ(dcode, 200);
  EXPECT_EQ(desc["environments"][0]["name"], "projects/default/environments/item-999");
}

TEST_F(EnvironmentRestTest, RequestIdTravelsFromHttpIntoTheEvent) {
  auto [code, created] =
      Call("POST", absl::StrCat(kCollection, "?environmentId=traced"), R"({"image":"a"})",
           {{"Content-Type", "application/json"}, {"x-request-id", "trace-me-123"}});
  ASSERT_EQ(code, 200);
  std::string request_id;
  ASSERT_TRUE(WaitFor([&] {
    submarine::common::v1::ListEventsRequest req;
    req.set_publisher("environment");
    req.set_page_size(100);
    submarine::common::v1::ListEventsResponse resp;
    if (!env_->events->ListEvents(ServiceCtx().get(), req, &resp).ok()) return false;
    for (const auto& e : resp.events()) {
      if (e.header().resource() == "projects/default/environments/traced") {
        request_id = e.header().request_id();
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(request_id, "trace-me-123");
}

// --- Apache Submarine face ----------------------------------------------------------------------

void ExpectEnvelope(const json& body, int code, const std::string& status) {
  EXPECT_EQ(body["code"], code) << body;
  EXPECT_EQ(body["status"], status) << body;
  EXPECT_TRUE(body.contains("success") && body.contains("message") && body.contains("result") &&
              body.contains("attributes"))
      << body;
  EXPECT_EQ(body["attributes"], json::object());
}

TEST_F(EnvironmentRestTest, SubmarineV1FaceMatchesApacheSubmarine) {
  const std::string spec = R"({"name":"my-submarine-env","dockerImage":"continuumio/anaconda3",
    "kernelSpec":{"name":"team_default_python_3.7","channels":["defaults"],
      "condaDependencies":["alabaster=0.7.12=py37_0"],
      "pipDependencies":["apache-submarine==0.7.0","pyarrow==0.17.0"]}})";
  auto [code, created] = Call("POST", "/api/v1/environment", spec);
  ASSERT_EQ(code, 200) << created;
  ExpectEnvelope(created, 200, "OK");
  EXPECT_EQ(created["success"], true);
  EXPECT_TRUE(created["message"].is_null());
  const json& result = created["result"];
  std::string id = result["environmentId"];
  EXPECT_EQ(id.rfind("environment_", 0), 0u);
  EXPECT_EQ(result["environmentSpec"]["name"], "my-submarine-env");
  EXPECT_EQ(result["environmentSpec"]["dockerImage"], "continuumio/anaconda3");
  EXPECT_EQ(result["environmentSpec"]["kernelSpec"]["pipDependencies"][1], "pyarrow==0.17.0");
  EXPECT_TRUE(result["environmentSpec"]["description"].is_null());
  EXPECT_TRUE(result["environmentSpec"]["image"].is_null());

  // The same environment on the AIP face.
  auto [acode, aip] = Call("GET", "/v1/projects/default/environments/my-submarine-env");
  ASSERT_EQ(acode, 200);
  EXPECT_EQ(aip["uid"], id);

  auto [lcode, list] = Call("GET", "/api/v1/environment?status=any");
  ASSERT_EQ(lcode, 200);
  ExpectEnvelope(list, 200, "OK");
  std::set<std::string> names;
  for (const auto& e : list["result"]) names.insert(e["environmentSpec"]["name"]);
  EXPECT_TRUE(names.count("my-submarine-env") && names.count("notebook-env") &&
              names.count("notebook-gpu-env"));

  auto [gcode, got] = Call("GET", "/api/v1/environment/my-submarine-env");
  ASSERT_EQ(gcode, 200);
  EXPECT_EQ(got["result"], result);

  // PATCH replaces the spec and, as in Apache Submarine, issues a new environmentId.
  auto [pcode, patched] = Call("PATCH", "/api/v1/environment/my-submarine-env",
                               "dockerImage: continuumio/miniconda3\nkernelSpec:\n  name: k2\n",
                               {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(pcode, 200) << patched;
  EXPECT_EQ(patched["result"]["environmentSpec"]["dockerImage"], "continuumio/miniconda3");
  EXPECT_EQ(patched["result"]["environmentSpec"]["kernelSpec"]["name"], "k2");
  EXPECT_NE(patched["result"]["environmentId"], id);

  // Errors use the envelope with Apache Submarine's messages and codes.
  auto [dup, dupbody] = Call("POST", "/api/v1/environment", spec);
  EXPECT_EQ(dup, 400);
  ExpectEnvelope(dupbody, 400, "BAD_REQUEST");
  EXPECT_EQ(dupbody["message"], "Unable to process the environment spec.");
  EXPECT_TRUE(dupbody["success"].is_null());
  EXPECT_TRUE(dupbody["result"].is_null());
  for (const std::string& body : {std::string(""), std::string("null"), std::string("{}")}) {
    auto [ncode, nbody] = Call("POST", "/api/v1/environment", body,
                               {{"Content-Type", "application/json"}});
    EXPECT_EQ(ncode, 400) << "body '" << body << "'";
    EXPECT_EQ(nbody["message"], "Invalid environment spec.") << nbody;
  }
  auto [ycode, ybody] = Call("POST", "/api/v1/environment", "name: yaml-env\ndockerImage: img\n",
                             {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(ycode, 200) << ybody;
  auto [mcode, mbody] = Call("GET", "/api/v1/environment/does-not-exist");
  EXPECT_EQ(mcode, 404);
  ExpectEnvelope(mbody, 404, "NOT_FOUND");
  EXPECT_EQ(mbody["message"], "Environment not found.");
  // Byte for byte, in Gson's member order, nulls printed.
  auto raw = http_.Request("GET", "/api/v1/environment/does-not-exist");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->body, R"({"status":"NOT_FOUND","code":404,"success":null,)"
                       R"("message":"Environment not found.","result":null,"attributes":{}})");
  auto seeded = http_.Request("GET", "/api/v1/environment/notebook-env");
  ASSERT_TRUE(seeded.ok());
  EXPECT_EQ(seeded->body.rfind(R"({"status":"OK","code":200,"success":true,"message":null,)", 0),
            0u)
      << seeded->body;
  EXPECT_EQ(Call("PATCH", "/api/v1/environment/does-not-exist", R"({"dockerImage":"x"})").first,
            404);

  auto [delcode, deleted] = Call("DELETE", "/api/v1/environment/my-submarine-env");
  ASSERT_EQ(delcode, 200);
  EXPECT_EQ(deleted["result"]["environmentSpec"]["name"], "my-submarine-env");
  EXPECT_EQ(Call("DELETE", "/api/v1/environment/my-submarine-env").first, 404);
}

}  // namespace
}  // namespace submarine::testing
