// The Apache Submarine 0.8 experiment API (/api/v1/experiment) through a real gateway in front of
// a real experiment service, checked against ../shared/reference/submarine-rest-v1.md: the
// envelope, ids, field names, statuses, times, messages, logs and the quirks clients rely on.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/http_client.h"

namespace submarine::testing {
namespace {

using json = nlohmann::ordered_json;

// The reference's TensorFlow example, with commands that run on this host.
constexpr char kSpec[] = R"({
  "meta": {"name": "TF-Mnist-JSON", "namespace": "default", "framework": "TensorFlow",
           "cmd": "echo \"role $SUBMARINE_TASK_ROLE env $ENV_1\"", "envVars": {"ENV_1": "ENV1"}},
  "environment": {"image": "apache/submarine:tf-mnist-with-summaries-1.0"},
  "spec": {"Ps": {"replicas": 1, "resources": "cpu=1,memory=1024M"},
           "Worker": {"replicas": 1, "resources": "cpu=1,memory=2048M"}}
})";

class SubmarineV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartExperimentService();
    ASSERT_TRUE(p.ok()) << p.status();
    svc_ = std::move(*p);
    auto gateway = StartService(
        "submarine-gateway", svc_->dir, "gateway",
        absl::StrCat("http_listen: 127.0.0.1:0\nbackends:\n  - address: ", svc_->ready.grpc,
                     "\n    services: [submarine.experiment.v1.ExperimentService, "
                     "submarine.experiment.v1.SubmarineExperimentApi]\n",
                     "auth:\n  insecure_no_authorization: true\nserver: {}\n"),
        &gateway_ready_);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(*gateway);
  }

  std::pair<int, json> Call(const std::string& method, const std::string& target,
                            const std::string& body = "",
                            const std::string& type = "application/json") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!body.empty()) headers.push_back({"Content-Type", type});
    auto r = HttpCall(gateway_ready_.http, method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {0, json()};
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->body;
    return {r->status, j};
  }

  json WaitForStatus(const std::string& id, const std::string& status) {
    json result;
    bool ok = WaitFor(
        [&] {
          result = Call("GET", "/api/v1/experiment/" + id).second["result"];
          return result.is_object() && result["status"] == status;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(ok) << result.dump();
    return result;
  }

  std::unique_ptr<ExperimentProcess> svc_;
  ChildProcess gateway_;
  ReadyInfo gateway_ready_;
};

// Objects whose key order is not part of the contract (maps), compared as sets of members.
nlohmann::json Unordered(const json& j) { return nlohmann::json::parse(j.dump()); }

void ExpectEnvelope(const json& body, int code, bool success) {
  ASSERT_TRUE(body.is_object()) << body.dump();
  std::vector<std::string> keys;
  for (auto it = body.begin(); it != body.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"status", "code", "success", "message", "result",
                                            "attributes"}));
  EXPECT_EQ(body["code"], code);
  if (success) {
    EXPECT_EQ(body["success"], true);
  } else {
    EXPECT_TRUE(body["success"].is_null());
  }
  EXPECT_EQ(body["attributes"], json::object());
}

TEST_F(SubmarineV1Test, PingPongs) {
  auto [status, body] = Call("GET", "/api/v1/experiment/ping");
  EXPECT_EQ(status, 200);
  ExpectEnvelope(body, 200, true);
  EXPECT_EQ(body["result"], "Pong");
  EXPECT_TRUE(body["message"].is_null());
}

TEST_F(SubmarineV1Test, CreateGetLogsListAndDeleteInSubmarinesShapes) {
  auto [status, body] = Call("POST", "/api/v1/experiment", kSpec);
  ASSERT_EQ(status, 200) << body.dump();
  ExpectEnvelope(body, 200, true);
  json e = body["result"];
  const std::string id = e["experimentId"];
  EXPECT_TRUE(std::regex_match(id, std::regex(R"(experiment-\d{13}-\d{4})"))) << id;
  EXPECT_EQ(e["status"], "Accepted");
  EXPECT_FALSE(e["uid"].get<std::string>().empty());
  EXPECT_TRUE(std::regex_match(e["acceptedTime"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  EXPECT_FALSE(e["createdTime"].is_null()) << "its CLI relies on a createdTime right away";
  EXPECT_TRUE(e["finishedTime"].is_null());
  EXPECT_EQ(e["spec"]["meta"]["experimentId"], id);
  EXPECT_EQ(e["spec"]["meta"]["name"], "tf-mnist-json");
  EXPECT_EQ(e["spec"]["meta"]["framework"], "TensorFlow");
  EXPECT_EQ(e["spec"]["meta"]["envVars"], json({{"ENV_1", "ENV1"}}));
  EXPECT_EQ(e["spec"]["meta"]["tags"], json::array());
  EXPECT_EQ(Unordered(e["spec"]["spec"]["Ps"]["resourceMap"]),
            nlohmann::json({{"cpu", "1"}, {"memory", "1024M"}}));
  EXPECT_EQ(e["spec"]["spec"]["Worker"]["replicas"], 1);
  EXPECT_TRUE(e["spec"]["spec"]["Worker"]["cmd"].is_null());
  EXPECT_EQ(e["spec"]["environment"]["image"], "apache/submarine:tf-mnist-with-summaries-1.0");
  EXPECT_TRUE(e["spec"]["code"].is_null());

  json done = WaitForStatus(id, "Succeeded");
  EXPECT_FALSE(done["runningTime"].is_null());
  EXPECT_FALSE(done["finishedTime"].is_null());

  auto [lstatus, logs] = Call("GET", "/api/v1/experiment/logs/" + id);
  ASSERT_EQ(lstatus, 200) << logs.dump();
  EXPECT_EQ(logs["result"]["experimentId"], id);
  std::map<std::string, json> pods;
  for (const auto& pod : logs["result"]["logContent"]) pods[pod["podName"]] = pod["podLog"];
  ASSERT_EQ(pods.size(), 2u) << logs.dump();
  EXPECT_EQ(pods[id + "-ps-0"], json::array({"role ps env ENV1"}));
  EXPECT_EQ(pods[id + "-worker-0"], json::array({"role worker env ENV1"}));

  auto [llstatus, all_logs] = Call("GET", "/api/v1/experiment/logs");
  ASSERT_EQ(llstatus, 200);
  ASSERT_EQ(all_logs["result"].size(), 1u);
  for (const auto& pod : all_logs["result"][0]["logContent"]) {
    EXPECT_EQ(pod["podLog"], json::array()) << "the list variant names pods only";
  }

  EXPECT_EQ(Call("GET", "/api/v1/experiment?status=succeeded").second["result"].size(), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/experiment?status=Running").second["result"].size(), 0u);
  EXPECT_EQ(Call("GET", "/api/v1/experiment").second["result"].size(), 1u);

  // PATCH cannot rewrite what already ran.
  auto [pstatus, patched] = Call("PATCH", "/api/v1/experiment/" + id, kSpec);
  EXPECT_EQ(pstatus, 409) << patched.dump();
  ExpectEnvelope(patched, 409, false);

  auto [dstatus, deleted] = Call("DELETE", "/api/v1/experiment/" + id);
  ASSERT_EQ(dstatus, 200) << deleted.dump();
  EXPECT_EQ(deleted["result"]["status"], "Deleted");
  for (const char* t : {"acceptedTime", "createdTime", "runningTime", "finishedTime"}) {
    EXPECT_TRUE(deleted["result"][t].is_null()) << t;
  }
  auto [gstatus, gone] = Call("GET", "/api/v1/experiment/" + id);
  EXPECT_EQ(gstatus, 404);
  EXPECT_EQ(gone, json::parse(R"({"status":"NOT_FOUND","code":404,"success":null,)"
                              R"("message":"Not found experiment.","result":null,)"
                              R"("attributes":{}})"));
}

TEST_F(SubmarineV1Test, YamlBodiesAreAccepted) {
  auto [status, body] = Call("POST", "/api/v1/experiment",
                             "meta:\n  name: yaml-one\n  framework: PyTorch\n  cmd: \"true\"\n"
                             "spec:\n  Master: {replicas: 1, resources: \"cpu=1,memory=512M\"}\n"
                             "  Worker: {replicas: 1, resources: \"cpu=1,memory=512M\"}\n",
                             "application/yaml");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["result"]["spec"]["meta"]["framework"], "PyTorch");
  WaitForStatus(body["result"]["experimentId"], "Succeeded");
}

TEST_F(SubmarineV1Test, BadRequestsGetSubmarinesMessagesAndStoreNothing) {
  // An empty body: HTTP 200, code 200, success null (Apache Submarine's own test asserts this).
  auto [status, body] = Call("POST", "/api/v1/experiment", "");
  EXPECT_EQ(status, 200);
  ExpectEnvelope(body, 200, false);
  EXPECT_EQ(body["message"], "Invalid experiment spec.");
  EXPECT_TRUE(body["result"].is_null());

  auto [fstatus, framework] =
      Call("POST", "/api/v1/experiment",
           R"({"meta":{"name":"x","framework":"Caffe","cmd":"true"},"spec":{"Worker":{}}})");
  EXPECT_EQ(fstatus, 400);
  ExpectEnvelope(framework, 400, false);
  const std::string message = framework["message"];
  EXPECT_EQ(message.rfind("Invalid experiment spec.", 0), 0u) << message;
  EXPECT_NE(message.find("experiment.spec.meta.framework"), std::string::npos) << message;

  auto [rstatus, role] =
      Call("POST", "/api/v1/experiment",
           R"({"meta":{"framework":"PyTorch","cmd":"true"},"spec":{"Ps":{"replicas":1}}})");
  EXPECT_EQ(rstatus, 400) << role.dump();
  auto [gstatus, git] = Call(
      "POST", "/api/v1/experiment",
      R"({"meta":{"cmd":"true"},"spec":{"Worker":{}},"code":{"git":{"url":"https://x/y.git","password":"p"}}})");
  EXPECT_EQ(gstatus, 400) << git.dump();
  EXPECT_NE(git["message"].get<std::string>().find("code.git.password"), std::string::npos);

  EXPECT_EQ(Call("GET", "/api/v1/experiment").second["result"], json::array());
  EXPECT_EQ(Call("GET", "/api/v1/experiment/experiment-1-0001").first, 404);
  EXPECT_EQ(Call("GET", "/api/v1/experiment/..%2Fx").first, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/experiment/nope").first, 404);
}

TEST_F(SubmarineV1Test, GitCodeIsCheckedOutBeforeTheCommand) {
  // A repository made here, reached through file:// (no network in tests).
  std::string repo = svc_->dir + "/repo";
  std::string script =
      absl::StrCat("set -e; mkdir -p ", repo, "; cd ", repo, "; git init -q -b main; ",
                   "echo 'print(\"from the repository\")' > train.py; git add train.py; ",
                   "git -c user.email=t@e -c user.name=t commit -q -m one");
  ASSERT_EQ(std::system(script.c_str()), 0);
  auto [status, body] =
      Call("POST", "/api/v1/experiment",
           absl::StrCat(R"({"meta":{"cmd":"python3 train.py"},"spec":{"Worker":{}},)",
                        R"("code":{"syncMode":"git","git":{"url":"file://)", repo, R"("}}})"));
  ASSERT_EQ(status, 200) << body.dump();
  const std::string id = body["result"]["experimentId"];
  EXPECT_EQ(body["result"]["spec"]["code"]["git"]["branch"], "main");
  WaitForStatus(id, "Succeeded");
  json pods = Call("GET", "/api/v1/experiment/logs/" + id).second["result"]["logContent"];
  ASSERT_EQ(pods.size(), 1u);
  std::string log = pods[0]["podLog"].dump();
  EXPECT_NE(log.find("from the repository"), std::string::npos) << log;
  EXPECT_NE(log.find("submarine: code file://"), std::string::npos) << log;
}

}  // namespace
}  // namespace submarine::testing
