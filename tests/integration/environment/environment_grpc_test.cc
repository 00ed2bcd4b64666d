// The environment service as a real process on a real PostgreSQL, called over gRPC.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/rpc/channel.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::environment::v1;

// Every case runs twice: straight to the service, and through the gateway's gRPC proxy.
class EnvironmentGrpcTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto p = StartEnvironment();
    ASSERT_TRUE(p.ok()) << p.status();
    env_ = std::move(*p);
    if (ViaGateway()) {
      auto st = StartGateway(env_.get());
      ASSERT_TRUE(st.ok()) << st;
      auto channel =
          grpc::CreateChannel(env_->gateway_ready.grpc, grpc::InsecureChannelCredentials());
      env_->stub = v1::EnvironmentService::NewStub(channel);
    }
  }
  bool ViaGateway() const { return GetParam(); }

  grpc::Status Create(const std::string& id, v1::Environment* out,
                      const std::function<void(v1::CreateEnvironmentRequest&)>& edit = {}) {
    v1::CreateEnvironmentRequest req;
    req.set_parent("projects/default");
    req.set_environment_id(id);
    req.mutable_environment()->set_image("python:3.11");
    req.mutable_environment()->set_display_name(id);
    if (edit) edit(req);
    return env_->stub->CreateEnvironment(Ctx().get(), req, out);
  }

  grpc::Status Get(const std::string& id, v1::Environment* out) {
    v1::GetEnvironmentRequest req;
    req.set_name("projects/default/environments/" + id);
    return env_->stub->GetEnvironment(Ctx().get(), req, out);
  }

  std::unique_ptr<EnvironmentProcess> env_;
};

TEST_P(EnvironmentGrpcTest, CrudRoundTrip) {
  v1::Environment created;
  auto st = Create("team-py311", &created, [](v1::CreateEnvironmentRequest& r) {
    auto* e = r.mutable_environment();
    e->set_description("for the team");
    e->mutable_kernel_spec()->set_name("py311");
    e->mutable_kernel_spec()->add_channels("defaults");
    e->mutable_kernel_spec()->add_pip_dependencies("pandas==2.1.0");
    (*e->mutable_labels())["team"] = "vision";
  });
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(created.name(), "projects/default/environments/team-py311");
  EXPECT_EQ(created.uid().rfind("environment_", 0), 0u) << created.uid();
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  v1::Environment got;
  ASSERT_TRUE(Get("team-py311", &got).ok());
  EXPECT_EQ(got.SerializeAsString(), created.SerializeAsString());

  v1::UpdateEnvironmentRequest upd;
  upd.mutable_environment()->set_name(created.name());
  upd.mutable_environment()->set_image("python:3.12");
  upd.mutable_environment()->set_etag(created.etag());
  upd.mutable_update_mask()->add_paths("image");
  v1::Environment updated;
  st = env_->stub->UpdateEnvironment(Ctx().get(), upd, &updated);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(updated.image(), "python:3.12");
  EXPECT_EQ(updated.description(), "for the team");  // untouched by the mask
  EXPECT_EQ(updated.uid(), created.uid());
  EXPECT_NE(updated.etag(), created.etag());

  v1::DeleteEnvironmentRequest del;
  del.set_name(created.name());
  v1::DeleteEnvironmentResponse deleted;
  ASSERT_TRUE(env_->stub->DeleteEnvironment(Ctx().get(), del, &deleted).ok());
  EXPECT_EQ(deleted.environment().image(), "python:3.12");
  st = Get("team-py311", &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorReason(st), "RESOURCE_NOT_FOUND");
}

TEST_P(EnvironmentGrpcTest, BuiltinProfilesAreSeededOnceOnly) {
  if (ViaGateway()) GTEST_SKIP() << "restarts the service process; covered directly";
  v1::Environment nb;
  ASSERT_TRUE(Get("notebook-env", &nb).ok());
  EXPECT_EQ(nb.kernel_spec().name(), "submarine_jupyter_py3");
  ASSERT_TRUE(Get("notebook-gpu-env", &nb).ok());
  v1::DeleteEnvironmentRequest del;
  del.set_name("projects/default/environments/notebook-env");
  v1::DeleteEnvironmentResponse resp;
  ASSERT_TRUE(env_->stub->DeleteEnvironment(Ctx().get(), del, &resp).ok());
  // A restart on the same schema does not bring it back.
  env_->process.Signal(SIGTERM);
  ASSERT_EQ(env_->process.Wait(), 0);
  auto again = StartEnvironment(env_->dbname, env_->dir);
  ASSERT_TRUE(again.ok()) << again.status();
  env_ = std::move(*again);
  EXPECT_EQ(Get("notebook-env", &nb).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Get("notebook-gpu-env", &nb).ok());
}

TEST_P(EnvironmentGrpcTest, EveryBadInputNamesItsFieldAndChangesNothing) {
  v1::Environment ok;
  ASSERT_TRUE(Create("stable", &ok).ok());
  struct Case {
    std::string what;
    std::function<void(v1::CreateEnvironmentRequest&)> edit;
    grpc::StatusCode code;
    std::string field;
  };
  std::vector<Case> cases = {
      {"missing image", [](auto& r) { r.mutable_environment()->clear_image(); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.image"},
      {"image with spaces", [](auto& r) { r.mutable_environment()->set_image("a b"); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.image"},
      {"bad id", [](auto& r) { r.set_environment_id("Bad_ID!"); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment_id"},
      {"sql in id", [](auto& r) { r.set_environment_id("x'; DROP TABLE environments;--"); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment_id"},
      {"empty id", [](auto& r) { r.clear_environment_id(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "environment_id"},
      {"bad parent", [](auto& r) { r.set_parent("projects/../etc"); },
       grpc::StatusCode::INVALID_ARGUMENT, "parent"},
      {"bad label key", [](auto& r) { (*r.mutable_environment()->mutable_labels())["Team"] = "x"; },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.labels.Team"},
      {"long description",
       [](auto& r) { r.mutable_environment()->set_description(std::string(5000, 'x')); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.description"},
      {"empty pip dependency",
       [](auto& r) { r.mutable_environment()->mutable_kernel_spec()->add_pip_dependencies(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.kernel_spec.pip_dependencies[0]"},
      {"name set on create",
       [](auto& r) { r.mutable_environment()->set_name("projects/default/environments/zz"); },
       grpc::StatusCode::INVALID_ARGUMENT, "environment.name"},
      {"bad request id", [](auto& r) { r.set_request_id("not a uuid"); },
       grpc::StatusCode::INVALID_ARGUMENT, "request_id"},
      {"duplicate", [](auto& r) { r.set_environment_id("stable"); },
       grpc::StatusCode::ALREADY_EXISTS, ""},
  };
  for (const auto& c : cases) {
    v1::Environment out;
    auto st = Create("fresh", &out, c.edit);
    EXPECT_EQ(st.error_code(), c.code) << c.what << ": " << st.error_message();
    if (!c.field.empty()) {
      EXPECT_EQ(ErrorField(st), c.field) << c.what;
      EXPECT_NE(st.error_message().find(c.field), std::string::npos) << c.what;
    }
  }
  v1::Environment after;
  ASSERT_TRUE(Get("stable", &after).ok());
  EXPECT_EQ(after.SerializeAsString(), ok.SerializeAsString());
  EXPECT_EQ(Get("fresh", &after).error_code(), grpc::StatusCode::NOT_FOUND);

  // Bad names on get/delete; bad update masks.
  v1::GetEnvironmentRequest get;
  get.set_name("environments/stable");
  auto st = env_->stub->GetEnvironment(Ctx().get(), get, &after);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "name");
  for (const char* path : {"uid", "create_time", "no_such_field"}) {
    v1::UpdateEnvironmentRequest upd;
    upd.mutable_environment()->set_name(ok.name());
    upd.mutable_update_mask()->add_paths(path);
    st = env_->stub->UpdateEnvironment(Ctx().get(), upd, &after);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_EQ(ErrorField(st), "update_mask") << path;
  }
  v1::UpdateEnvironmentRequest clear_image;
  clear_image.mutable_environment()->set_name(ok.name());
  clear_image.mutable_update_mask()->add_paths("image");
  st = env_->stub->UpdateEnvironment(Ctx().get(), clear_image, &after);
  EXPECT_EQ(ErrorField(st), "environment.image");
  ASSERT_TRUE(Get("stable", &after).ok());
  EXPECT_EQ(after.SerializeAsString(), ok.SerializeAsString());
}

// Without authorization (permission.insecure_no_authorization) nobody says which projects exist,
// so any well-formed project id is a project; each keeps its own environments.
TEST_P(EnvironmentGrpcTest, WithoutAuthorizationAnyWellFormedProjectHoldsItsOwnEnvironments) {
  v1::Environment in_other;
  ASSERT_TRUE(Create("shared-id", &in_other, [](v1::CreateEnvironmentRequest& r) {
                r.set_parent("projects/other");
              }).ok());
  EXPECT_EQ(in_other.name(), "projects/other/environments/shared-id");
  v1::Environment in_default;
  ASSERT_TRUE(Create("shared-id", &in_default).ok());
  EXPECT_NE(in_default.uid(), in_other.uid());
  v1::ListEnvironmentsRequest list;
  list.set_parent("projects/other");
  v1::ListEnvironmentsResponse resp;
  ASSERT_TRUE(env_->stub->ListEnvironments(Ctx().get(), list, &resp).ok());
  ASSERT_EQ(resp.environments_size(), 1);
  EXPECT_EQ(resp.environments(0).name(), "projects/other/environments/shared-id");
  v1::DeleteEnvironmentRequest del;
  del.set_name("projects/other/environments/shared-id");
  v1::DeleteEnvironmentResponse deleted;
  ASSERT_TRUE(env_->stub->DeleteEnvironment(Ctx().get(), del, &deleted).ok());
  v1::Environment still;
  EXPECT_TRUE(Get("shared-id", &still).ok()) << "the default project's twin must remain";
}

TEST_P(EnvironmentGrpcTest, EtagConflictsAreAborted) {
  v1::Environment created;
  ASSERT_TRUE(Create("contended", &created).ok());
  v1::UpdateEnvironmentRequest first;
  first.mutable_environment()->set_name(created.name());
  first.mutable_environment()->set_description("first writer");
  first.mutable_environment()->set_etag(created.etag());
  v1::Environment after_first;
  ASSERT_TRUE(env_->stub->UpdateEnvironment(Ctx().get(), first, &after_first).ok());
  // A second writer still holding the old etag loses.
  v1::UpdateEnvironmentRequest second = first;
  second.mutable_environment()->set_description("second writer");
  v1::Environment out;
  auto st = env_->stub->UpdateEnvironment(Ctx().get(), second, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ErrorReason(st), "ETAG_MISMATCH");
  v1::DeleteEnvironmentRequest del;
  del.set_name(created.name());
  del.set_etag(created.etag());
  v1::DeleteEnvironmentResponse dresp;
  EXPECT_EQ(env_->stub->DeleteEnvironment(Ctx().get(), del, &dresp).error_code(),
            grpc::StatusCode::ABORTED);
  ASSERT_TRUE(Get("contended", &out).ok());
  EXPECT_EQ(out.description(), "first writer");
  del.set_etag(out.etag());
  EXPECT_TRUE(env_->stub->DeleteEnvironment(Ctx().get(), del, &dresp).ok());
}

TEST_P(EnvironmentGrpcTest, ConcurrentUpdatesWithTheSameEtagHaveOneWinner) {
  v1::Environment created;
  ASSERT_TRUE(Create("race", &created).ok());
  std::atomic<int> ok{0}, aborted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      v1::UpdateEnvironmentRequest upd;
      upd.mutable_environment()->set_name(created.name());
      upd.mutable_environment()->set_description(absl::StrCat("writer ", i));
      upd.mutable_environment()->set_etag(created.etag());
      v1::Environment out;
      auto st = env_->stub->UpdateEnvironment(Ctx().get(), upd, &out);
      if (st.ok()) ++ok;
      if (st.error_code() == grpc::StatusCode::ABORTED) ++aborted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(aborted, 7);
}

TEST_P(EnvironmentGrpcTest, RepeatedRequestIdReturnsTheFirstAnswer) {
  v1::Environment a, b;
  auto with_id = [](v1::CreateEnvironmentRequest& r) {
    r.set_request_id("0b3f5c3e-8f7a-4e59-a3e4-2f9d2b8c6a11");
  };
  ASSERT_TRUE(Create("idem", &a, with_id).ok());
  ASSERT_TRUE(Create("idem", &b, with_id).ok());
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  // Exactly one EnvironmentCreated event for it.
  submarine::common::v1::ListEventsRequest req;
  req.set_publisher("environment");
  req.set_page_size(1000);
  int created_events = 0;
  ASSERT_TRUE(WaitFor([&] {
    submarine::common::v1::ListEventsResponse resp;
    if (!env_->events->ListEvents(ServiceCtx().get(), req, &resp).ok()) return false;
    created_events = 0;
    for (const auto& e : resp.events()) {
      if (e.header().resource() == a.name()) ++created_events;
    }
    return created_events >= 1;
  }));
  EXPECT_EQ(created_events, 1);
}

TEST_P(EnvironmentGrpcTest, ConcurrentRepeatsOfOneRequestIdGetTheFirstAnswer) {
  const std::string id = "5f0c6a1e-2b7d-4c39-9e8a-0d4b1c2e3f40";
  std::vector<v1::Environment> answers(8);
  std::vector<grpc::Status> statuses(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Create("concurrent-idem", &answers[i],
                           [&](v1::CreateEnvironmentRequest& r) { r.set_request_id(id); });
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(answers[i].SerializeAsString(), answers[0].SerializeAsString());
  }
  // The same holds for an update repeated concurrently: one change, one new etag.
  std::vector<v1::Environment> updated(6);
  threads.clear();
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      v1::UpdateEnvironmentRequest upd;
      upd.mutable_environment()->set_name(answers[0].name());
      upd.mutable_environment()->set_description("once");
      upd.mutable_environment()->set_etag(answers[0].etag());
      upd.set_request_id("7a1d3c55-0f6e-4b2a-8c1d-9e0f1a2b3c4d");
      auto st = env_->stub->UpdateEnvironment(Ctx().get(), upd, &updated[i]);
      EXPECT_TRUE(st.ok()) << i << ": " << st.error_message();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& u : updated) EXPECT_EQ(u.etag(), updated[0].etag());
}

TEST_P(EnvironmentGrpcTest, RequestIdReusedForAnotherRequestIsRefused) {
  const std::string id = "c3d2e1f0-1111-4222-8333-444455556666";
  v1::Environment first;
  ASSERT_TRUE(Create("first-use", &first, [&](auto& r) { r.set_request_id(id); }).ok());
  v1::Environment other;
  auto st = Create("second-use", &other, [&](auto& r) { r.set_request_id(id); });
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "request_id");
  EXPECT_EQ(ErrorReason(st), "REQUEST_ID_REUSED");
  v1::DeleteEnvironmentRequest del;
  del.set_name(first.name());
  del.set_request_id(id);
  v1::DeleteEnvironmentResponse resp;
  st = env_->stub->DeleteEnvironment(Ctx().get(), del, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::Environment got;
  EXPECT_TRUE(Get("first-use", &got).ok());
  EXPECT_EQ(Get("second-use", &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(EnvironmentGrpcTest, ChangesPublishEventsInOrder) {
  v1::Environment e;
  ASSERT_TRUE(Create("evented", &e).ok());
  v1::UpdateEnvironmentRequest upd;
  upd.mutable_environment()->set_name(e.name());
  upd.mutable_environment()->set_description("changed");
  ASSERT_TRUE(env_->stub->UpdateEnvironment(Ctx("req-upd-1").get(), upd, &e).ok());
  v1::DeleteEnvironmentRequest del;
  del.set_name(e.name());
  v1::DeleteEnvironmentResponse dresp;
  ASSERT_TRUE(env_->stub->DeleteEnvironment(Ctx().get(), del, &dresp).ok());

  std::vector<std::string> topics;
  std::string update_request_id;
  ASSERT_TRUE(WaitFor([&] {
    submarine::common::v1::ListEventsRequest req;
    req.set_publisher("environment");
    req.set_page_size(1000);
    submarine::common::v1::ListEventsResponse resp;
    if (!env_->events->ListEvents(ServiceCtx().get(), req, &resp).ok()) return false;
    topics.clear();
    uint64_t expect_seq = 1;
    for (const auto& ev : resp.events()) {
      if (ev.header().seq() != expect_seq++) return false;
      if (ev.header().resource() != e.name()) continue;
      topics.push_back(ev.topic());
      if (ev.topic() == "submarine.environment.v1.EnvironmentUpdated") {
        update_request_id = ev.header().request_id();
        v1::EnvironmentUpdated payload;
        EXPECT_TRUE(payload.ParseFromString(ev.payload()));
        EXPECT_EQ(payload.environment().description(), "changed");
      }
    }
    return topics.size() == 3;
  }));
  EXPECT_EQ(topics[0], "submarine.environment.v1.EnvironmentCreated");
  EXPECT_EQ(topics[1], "submarine.environment.v1.EnvironmentUpdated");
  EXPECT_EQ(topics[2], "submarine.environment.v1.EnvironmentDeleted");
  EXPECT_EQ(update_request_id, "req-upd-1");
}

TEST_P(EnvironmentGrpcTest, PaginatesOverAThousandItemsWithoutGapsOrRepeats) {
  constexpr int kItems = 1000;
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&] {
      for (int i = next++; i < kItems; i = next++) {
        v1::Environment out;
        auto st = Create(absl::StrCat("bulk-", i), &out, [i](v1::CreateEnvironmentRequest& r) {
          (*r.mutable_environment()->mutable_labels())["parity"] = i % 2 ? "odd" : "even";
        });
        if (!st.ok()) {
          ++failed;
          ADD_FAILURE() << st.error_code() << " " << st.error_message();
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(failed, 0);

  for (const char* order : {"", "create_time desc"}) {
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    google::protobuf::Timestamp prev;
    do {
      v1::ListEnvironmentsRequest req;
      req.set_parent("projects/default");
      req.set_page_size(37);
      req.set_page_token(token);
      req.set_order_by(order);
      req.set_filter("name = bulk-*");
      v1::ListEnvironmentsResponse resp;
      auto st = env_->stub->ListEnvironments(Ctx().get(), req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      for (const auto& e : resp.environments()) {
        if (!seen.empty()) {
          bool desc = std::string(order).find("desc") != std::string::npos;
          auto a = prev.seconds() * 1000000000LL + prev.nanos();
          auto b = e.create_time().seconds() * 1000000000LL + e.create_time().nanos();
          EXPECT_TRUE(desc ? b <= a : a <= b);
        }
        prev = e.create_time();
        seen.push_back(e.name());
      }
      token = resp.next_page_token();
      ++pages;
    } while (!token.empty() && pages < 100);
    EXPECT_EQ(seen.size(), static_cast<size_t>(kItems)) << order;
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << order;
    EXPECT_EQ(pages, (kItems + 36) / 37) << order;
  }

  // Filters.
  v1::ListEnvironmentsRequest req;
  req.set_parent("projects/default");
  req.set_page_size(1000);
  req.set_filter("labels.parity = odd AND name = bulk-1*");
  v1::ListEnvironmentsResponse resp;
  ASSERT_TRUE(env_->stub->ListEnvironments(Ctx().get(), req, &resp).ok());
  // bulk-1, bulk-11..19 (odd: 11,13,15,17,19), bulk-101..199 odd (50), bulk-1xx... = 1+5+50
  EXPECT_EQ(resp.environments_size(), 56);
  for (const auto& e : resp.environments()) EXPECT_EQ(e.labels().at("parity"), "odd");
  req.set_filter("labels.builtin:*");
  auto has = env_->stub->ListEnvironments(Ctx().get(), req, &resp);
  ASSERT_TRUE(has.ok()) << has.error_message();
  EXPECT_EQ(resp.environments_size(), 2);
  req.set_filter("image != \"python:3.11\"");
  ASSERT_TRUE(env_->stub->ListEnvironments(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.environments_size(), 2);  // only the built-ins use another image

  // A token is bound to its query; bad inputs name their field.
  req.set_filter("");
  req.set_page_size(10);
  ASSERT_TRUE(env_->stub->ListEnvironments(Ctx().get(), req, &resp).ok());
  req.set_page_token(resp.next_page_token());
  req.set_filter("labels.parity = odd");
  auto st = env_->stub->ListEnvironments(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "page_token");
  v1::ListEnvironmentsRequest bad;
  bad.set_parent("projects/default");
  bad.set_page_size(-5);
  EXPECT_EQ(ErrorField(env_->stub->ListEnvironments(Ctx().get(), bad, &resp)), "page_size");
  bad.set_page_size(0);
  bad.set_filter("uid = x");
  EXPECT_EQ(ErrorField(env_->stub->ListEnvironments(Ctx().get(), bad, &resp)), "filter");
  bad.set_filter("");
  bad.set_order_by("image");
  EXPECT_EQ(ErrorField(env_->stub->ListEnvironments(Ctx().get(), bad, &resp)), "order_by");
}

TEST_P(EnvironmentGrpcTest, FiltersCombineOrInNotComparisonsAndTimeRanges) {
  // f-0 … f-11, created one after another: tier a, b, c in turn; image img:0 or img:1.
  std::vector<v1::Environment> made(12);
  for (int i = 0; i < 12; ++i) {
    auto st = Create(absl::StrCat("f-", i), &made[i], [i](v1::CreateEnvironmentRequest& r) {
      r.mutable_environment()->set_image(absl::StrCat("img:", i % 2));
      (*r.mutable_environment()->mutable_labels())["tier"] = std::string(1, "abc"[i % 3]);
    });
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // The ids a filter selects, in creation order (or the error it gets).
  auto ids = [&](const std::string& filter) {
    v1::ListEnvironmentsRequest req;
    req.set_parent("projects/default");
    req.set_page_size(1000);
    req.set_filter(filter);
    v1::ListEnvironmentsResponse resp;
    auto st = env_->stub->ListEnvironments(Ctx().get(), req, &resp);
    if (!st.ok()) return std::vector<std::string>{"error: " + st.error_message()};
    std::vector<std::string> out;
    for (const auto& e : resp.environments())
      out.push_back(e.name().substr(e.name().rfind('/') + 1));
    return out;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids("name = f-* AND (labels.tier = a OR labels.tier = \"b\") AND image = \"img:1\""),
            (Ids{"f-1", "f-3", "f-7", "f-9"}));
  EXPECT_EQ(ids("labels.tier = c or image = 'img:0' and name != f-0"),
            (Ids{"f-2", "f-4", "f-5", "f-6", "f-8", "f-10", "f-11"}));
  EXPECT_EQ(ids("name IN (\"f-1\", f-2, \"projects/default/environments/f-3\", nope)"),
            (Ids{"f-1", "f-2", "f-3"}));
  EXPECT_EQ(ids("name = f-1* AND labels.tier NOT IN (a, c)"), (Ids{"f-1", "f-10"}));
  EXPECT_EQ(ids("name = f-* AND NOT (labels.tier = a OR labels.tier = b)"),
            (Ids{"f-2", "f-5", "f-8", "f-11"}));
  EXPECT_EQ(ids("name >= \"f-6\" AND name < f-8"), (Ids{"f-6", "f-7"}));
  // A label that is absent is "not equal": NOT is the complement.
  EXPECT_EQ(ids("NOT labels.tier:* AND NOT name = f-*").size(), 2u);  // the built-ins
  EXPECT_EQ(ids("labels.tier != a AND NOT name = f-*").size(), 2u);

  // A time range between two creations: [f-3, f-7).
  auto rfc3339 = [](const google::protobuf::Timestamp& t) {
    return google::protobuf::util::TimeUtil::ToString(t);
  };
  for (int i = 1; i < 12; ++i) {
    ASSERT_LT(google::protobuf::util::TimeUtil::TimestampToMicroseconds(made[i - 1].create_time()),
              google::protobuf::util::TimeUtil::TimestampToMicroseconds(made[i].create_time()));
  }
  EXPECT_EQ(ids(absl::StrCat("create_time >= \"", rfc3339(made[3].create_time()),
                             "\" AND createTime < ", rfc3339(made[7].create_time()))),
            (Ids{"f-3", "f-4", "f-5", "f-6"}));
  EXPECT_EQ(ids("create_time < 2000-01-01 OR create_time > \"9999-12-31T00:00:00Z\""), Ids{});

  // Errors name the filter, what is wrong and where.
  for (const auto& [filter, message] : std::vector<std::pair<std::string, std::string>>{
           {"labels.tier < \"b\"", "filter: \"<\" does not apply to \"labels.tier\" at position 1"},
           {"create_time > yesterday", "\"create_time\" takes an RFC 3339 time"},
           {"colour = red", "filterable: name, display_name, image, labels.<key>"},
           {"name = f-1 OR", "filter: expected a field name at position 14"},
           {"name = \"x'; drop table environments; --\" OR 1 = 1",
            "expected a field name at position 45"}}) {
    v1::ListEnvironmentsRequest req;
    req.set_parent("projects/default");
    req.set_filter(filter);
    v1::ListEnvironmentsResponse resp;
    auto st = env_->stub->ListEnvironments(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << filter;
    EXPECT_EQ(ErrorField(st), "filter") << filter;
    EXPECT_NE(st.error_message().find(message), std::string::npos)
        << filter << ": " << st.error_message();
  }
  EXPECT_EQ(ids("name = f-*").size(), 12u);  // nothing was harmed
}

TEST_P(EnvironmentGrpcTest, SigtermDuringLoadDrainsAndExitsZero) {
  if (ViaGateway()) GTEST_SKIP() << "signals the service process; covered directly";
  // Writers create environments until the service goes away. Every call must either complete
  // (OK, and the environment is stored) or be refused without effect: UNAVAILABLE once the
  // server stopped accepting, or CANCELLED for a call gRPC had queued but never dispatched.
  struct Outcome {
    std::string id;
    grpc::StatusCode code;
  };
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::EnvironmentService::NewStub(rpc::MakeChannel(env_->ready.grpc));
      for (int n = 0; !stop; ++n) {
        v1::CreateEnvironmentRequest req;
        req.set_parent("projects/default");
        req.set_environment_id(absl::StrCat("load-", c, "-", n));
        req.mutable_environment()->set_image("python:3.11");
        v1::Environment out;
        auto st = stub->CreateEnvironment(Ctx().get(), req, &out);
        (st.ok() ? ok : refused)++;
        std::lock_guard lock(mu);
        outcomes.push_back({req.environment_id(), st.error_code()});
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return ok > 100; }));
  env_->process.Signal(SIGTERM);
  int code = env_->process.Wait();
  int before = refused;
  ASSERT_TRUE(WaitFor([&] { return refused > before + 10; }));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(code, 0);

  auto again = StartEnvironment(env_->dbname, env_->dir);
  ASSERT_TRUE(again.ok()) << again.status();
  env_ = std::move(*again);
  int stored = 0;
  for (const auto& o : outcomes) {
    v1::Environment got;
    auto st = Get(o.id, &got);
    if (o.code == grpc::StatusCode::OK) {
      EXPECT_TRUE(st.ok()) << o.id << " was acknowledged but is not stored";
      ++stored;
    } else {
      EXPECT_TRUE(o.code == grpc::StatusCode::UNAVAILABLE || o.code == grpc::StatusCode::CANCELLED)
          << o.id << ": unexpected code " << o.code;
      EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND)
          << o.id << " was refused (" << o.code << ") but has been stored";
    }
  }
  EXPECT_GT(stored, 100);
}

// Retention at zero hours: answers to request ids are forgotten, events already sent to the bus
// are deleted from the outbox, and unsent ones never are.
TEST(EnvironmentRetention, PrunesSentEventsAndOldRequestIdAnswers) {
  std::string dir = MakeTempDir("env-retention");
  auto bus = StartEventBus(dir);
  ASSERT_TRUE(bus.ok()) << bus.status();
  const std::string frontend = bus->frontend;
  const std::string retention =
      "  outbox_retention_hours: 0\nrequest_id_retention_hours: 0\n"
      "housekeeping_interval_ms: 100\n";
  auto env = StartEnvironment("", dir, retention, frontend);
  ASSERT_TRUE(env.ok()) << env.status();
  auto& stub = (*env)->stub;

  v1::CreateEnvironmentRequest req;
  req.set_parent("projects/default");
  req.set_environment_id("pruned");
  req.mutable_environment()->set_image("python:3.11");
  req.set_request_id("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a");
  v1::Environment out;
  ASSERT_TRUE(stub->CreateEnvironment(Ctx().get(), req, &out).ok());
  // Once the answer is forgotten, a repeat is a new request (and the id is taken).
  ASSERT_TRUE(WaitFor([&] {
    v1::Environment again;
    return stub->CreateEnvironment(Ctx().get(), req, &again).error_code() ==
           grpc::StatusCode::ALREADY_EXISTS;
  }));
  // Every event was sent, so the outbox empties.
  ASSERT_TRUE(WaitFor([&] {
    submarine::common::v1::ListEventsRequest list;
    list.set_publisher("environment");
    submarine::common::v1::ListEventsResponse resp;
    return (*env)->events->ListEvents(ServiceCtx().get(), list, &resp).ok() &&
           resp.events_size() == 0 && resp.last_seq() >= 4;
  }));

  // Without a bus nothing is sent, so nothing is pruned.
  auto unsent = StartEnvironment("", MakeTempDir("env-retention"), retention, "");
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  submarine::common::v1::ListEventsRequest list;
  list.set_publisher("environment");
  submarine::common::v1::ListEventsResponse before;
  ASSERT_TRUE(WaitFor([&] {
    return (*unsent)->events->ListEvents(ServiceCtx().get(), list, &before).ok() &&
           before.events_size() == 3;  // the built-ins and the local cluster, sequenced
  }));
  int runs_seen = 0;
  // Several housekeeping periods pass (visible in the log as nothing pruned); the events stay.
  ASSERT_TRUE(WaitFor([&] {
    submarine::common::v1::ListEventsResponse now;
    EXPECT_TRUE((*unsent)->events->ListEvents(ServiceCtx().get(), list, &now).ok());
    EXPECT_EQ(now.events_size(), 3);
    return ++runs_seen >= 10;
  }));
}

// Readiness tells the truth: while the service's database refuses connections the process
// reports NOT_SERVING (so the gateway's /readyz and any load balancer stop sending it traffic),
// and SERVING again once the database is back, with nothing lost.
TEST(EnvironmentReadiness, FollowsTheDatabase) {
  auto env = StartEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  auto health = grpc::health::v1::Health::NewStub((*env)->channel);
  auto status = [&] {
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return health->Check(&ctx, req, &resp).ok() ? resp.status()
                                                 : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  ASSERT_TRUE(WaitFor([&] { return status() == grpc::health::v1::HealthCheckResponse::SERVING; }));
  v1::CreateEnvironmentRequest create;
  create.set_parent("projects/default");
  create.set_environment_id("kept");
  create.mutable_environment()->set_image("python:3.11");
  v1::Environment created;
  ASSERT_TRUE((*env)->stub->CreateEnvironment(Ctx().get(), create, &created).ok());

  pqxx::connection admin(TestPostgres::Get().ConnInfo());
  pqxx::nontransaction sql(admin);
  const std::string db = sql.quote_name((*env)->dbname);
  sql.exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false");
  sql.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " +
           sql.quote((*env)->dbname));
  EXPECT_TRUE(
      WaitFor([&] { return status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
              std::chrono::seconds(20)));
  v1::GetEnvironmentRequest get;
  get.set_name(created.name());
  v1::Environment read;
  EXPECT_EQ((*env)->stub->GetEnvironment(Ctx().get(), get, &read).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  sql.exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true");
  EXPECT_TRUE(WaitFor([&] { return status() == grpc::health::v1::HealthCheckResponse::SERVING; },
                      std::chrono::seconds(20)));
  ASSERT_TRUE((*env)->stub->GetEnvironment(Ctx().get(), get, &read).ok());
  EXPECT_EQ(read.etag(), created.etag());
}

INSTANTIATE_TEST_SUITE_P(DirectAndViaGateway, EnvironmentGrpcTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ViaGateway" : "Direct";
                         });

}  // namespace
}  // namespace submarine::testing
