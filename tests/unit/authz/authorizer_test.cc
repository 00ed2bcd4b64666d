// The authorizer's decisions and cache logic against a scripted permission backend: what is
// asked, what is cached, for how long, and what invalidation does to answers in flight.
#include "common/authz/authorizer.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/authz/answer_cache.h"
#include "common/events/event_options.h"
#include "common/status/status.h"
#include "submarine/environment/v1/environment.pb.h"
#include "tests/support/fake_clock.h"

namespace submarine::authz {
namespace {

using submarine::common::v1::Principal;
using submarine::permission::v1::CheckPermissionRequest;
using submarine::permission::v1::CheckPermissionResponse;
using submarine::permission::v1::ListAccessibleRequest;
using submarine::permission::v1::ListAccessibleResponse;
using submarine::permission::v1::Permission;
using submarine::testing::FakeClock;

// Answers from a table keyed by "subject resource PERMISSION"; counts every question.
class FakeBackend : public PermissionBackend {
 public:
  absl::StatusOr<CheckPermissionResponse> CheckPermission(
      const rpc::CallInfo&, const CheckPermissionRequest& req) override {
    std::string key = absl::StrCat(req.subject(), " ", req.resource(), " ",
                                   submarine::permission::v1::Permission_Name(req.permission()));
    checks.push_back(key);
    if (!fail.ok()) return fail;
    CheckPermissionResponse resp;
    resp.set_allowed(allowed.count(key) > 0);
    resp.set_project_missing(
        missing_projects.count(req.resource().substr(0, req.resource().find('/', 9))) > 0);
    // What happens after the answer was decided and before it reaches the authorizer.
    if (during_fetch) during_fetch();
    return resp;
  }
  absl::StatusOr<ListAccessibleResponse> ListAccessible(const rpc::CallInfo&,
                                                        const ListAccessibleRequest& req) override {
    lists.push_back(absl::StrCat(req.subject(), " ", req.parent(), " ", req.collection()));
    if (!fail.ok()) return fail;
    ListAccessibleResponse resp = list_answer;
    if (during_fetch) during_fetch();
    return resp;
  }

  std::set<std::string> allowed;
  std::set<std::string> missing_projects;
  absl::Status fail;
  ListAccessibleResponse list_answer;
  std::function<void()> during_fetch;
  std::vector<std::string> checks;
  std::vector<std::string> lists;
};

rpc::CallInfo User(const std::string& user, bool admin = false) {
  rpc::CallInfo c;
  c.principal.set_kind(Principal::USER);
  c.principal.set_user(user);
  c.principal.set_admin(admin);
  c.request_id = "req-1";
  return c;
}

std::string Reason(const absl::Status& st) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(st, &info) ? info.reason() : "";
}

class AuthorizerTest : public ::testing::Test {
 protected:
  // A fresh service name per test keeps the process-wide metric series apart.
  void Make(size_t size = 100, std::chrono::milliseconds ttl = std::chrono::seconds(30)) {
    static int n = 0;
    service_ = absl::StrCat("authz-unit-", ++n);
    Authorizer::Options o;
    o.service_name = service_;
    o.cache_size = size;
    o.cache_ttl = ttl;
    auto backend = std::make_unique<FakeBackend>();
    backend_ = backend.get();
    authz_ = std::make_unique<Authorizer>(o, std::move(backend), clock_);
  }
  uint64_t Metric(const std::string& name) {
    return metrics::Registry::Global()
        .GetCounter(name, "", absl::StrCat("service=\"", service_, "\""))
        ->Value();
  }

  FakeClock clock_;
  std::string service_;
  FakeBackend* backend_ = nullptr;
  std::unique_ptr<Authorizer> authz_;
};

constexpr char kEnv[] = "projects/p/environments/e";

TEST_F(AuthorizerTest, AllowedAnswersAreCachedPerSubjectResourceAndPermission) {
  Make();
  backend_->allowed = {"users/alice projects/p/environments/e READ"};
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  EXPECT_EQ(backend_->checks.size(), 1u);
  EXPECT_EQ(Metric("submarine_authz_cache_hits_total"), 1u);
  EXPECT_EQ(Metric("submarine_authz_cache_misses_total"), 1u);

  // Another permission, subject or resource is another question.
  EXPECT_EQ(authz_->Check(User("alice"), kEnv, Permission::WRITE).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->Check(User("bob"), kEnv, Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->Check(User("alice"), "projects/p/environments/f", Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backend_->checks.size(), 4u);
  EXPECT_EQ(backend_->checks[0], "users/alice projects/p/environments/e READ");
  EXPECT_EQ(backend_->checks[2], "users/bob projects/p/environments/e READ");

  // Denials are cached too.
  EXPECT_EQ(authz_->Check(User("bob"), kEnv, Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backend_->checks.size(), 4u);
}

TEST_F(AuthorizerTest, DenialSaysTheSameWhetherOrNotTheProjectExists) {
  Make();
  backend_->missing_projects = {"projects/gone"};
  absl::Status existing = authz_->Check(User("bob"), "projects/p/environments/x", Permission::READ);
  absl::Status missing =
      authz_->Check(User("bob"), "projects/gone/environments/x", Permission::READ);
  EXPECT_EQ(existing.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(missing.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Reason(existing), "PERMISSION_DENIED");
  EXPECT_EQ(Reason(missing), "PERMISSION_DENIED");
  EXPECT_NE(Message(existing).find("projects/p/environments/x"), std::string::npos);
  EXPECT_NE(Message(existing).find("READ"), std::string::npos);
  // Apart from the resource name, the two messages are identical.
  std::string a = Message(existing), b = Message(missing);
  a.replace(a.find("projects/p/"), 11, "projects/gone/");
  EXPECT_EQ(a, b);

  // Only a platform admin learns that the project is missing.
  absl::Status admin =
      authz_->Check(User("root", /*admin=*/true), "projects/gone/environments/x", Permission::READ);
  EXPECT_EQ(admin.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Reason(admin), "PROJECT_NOT_FOUND");
  EXPECT_NE(Message(admin).find("projects/gone\""), std::string::npos);
}

TEST_F(AuthorizerTest, AnswersExpireAfterTheTtl) {
  Make(100, std::chrono::milliseconds(1000));
  backend_->allowed = {"users/alice projects/p/environments/e READ"};
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  clock_.Advance(std::chrono::milliseconds(999));
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  EXPECT_EQ(backend_->checks.size(), 1u);
  backend_->allowed.clear();  // revoked, and no event told us
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(authz_->Check(User("alice"), kEnv, Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backend_->checks.size(), 2u);
}

TEST_F(AuthorizerTest, TheCacheIsBoundedAndEvictsTheLeastRecentlyUsed) {
  Make(/*size=*/2);
  auto check = [&](const std::string& user) {
    return authz_->Check(User(user), kEnv, Permission::READ);
  };
  (void)check("a");
  (void)check("b");
  (void)check("a");  // hit: "a" is now the most recently used
  EXPECT_EQ(backend_->checks.size(), 2u);
  (void)check("c");  // evicts "b"
  EXPECT_EQ(backend_->checks.size(), 3u);
  (void)check("a");
  (void)check("c");
  EXPECT_EQ(backend_->checks.size(), 3u);
  (void)check("b");
  EXPECT_EQ(backend_->checks.size(), 4u);
}

TEST_F(AuthorizerTest, InvalidationDropsEveryAnswer) {
  Make();
  backend_->allowed = {"users/alice projects/p/environments/e READ"};
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  backend_->allowed.clear();
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());  // still cached
  authz_->InvalidateAll();
  EXPECT_EQ(authz_->Check(User("alice"), kEnv, Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Metric("submarine_authz_invalidations_total"), 1u);
}

TEST_F(AuthorizerTest, AnAnswerFetchedBeforeAnInvalidationIsNotCached) {
  Make();
  backend_->allowed = {"users/alice projects/p/environments/e READ"};
  // The revocation event arrives while the (now stale) "allowed" answer is on its way back.
  backend_->during_fetch = [&] {
    backend_->allowed.clear();
    authz_->InvalidateAll();
  };
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  backend_->during_fetch = nullptr;
  EXPECT_EQ(authz_->Check(User("alice"), kEnv, Permission::READ).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backend_->checks.size(), 2u);
}

TEST_F(AuthorizerTest, BackendFailuresRefuseTheCallAndAreNotCached) {
  Make();
  backend_->allowed = {"users/alice projects/p/environments/e READ"};
  backend_->fail = absl::UnavailableError("connection refused");
  absl::Status st = authz_->Check(User("alice"), kEnv, Permission::READ);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Reason(st), "PERMISSION_SERVICE_UNAVAILABLE");
  // Any failure fails closed, not only UNAVAILABLE.
  backend_->fail = absl::InternalError("bug");
  EXPECT_EQ(authz_->Check(User("alice"), kEnv, Permission::READ).code(),
            absl::StatusCode::kUnavailable);
  backend_->fail = absl::OkStatus();
  EXPECT_TRUE(authz_->Check(User("alice"), kEnv, Permission::READ).ok());
  EXPECT_EQ(backend_->checks.size(), 3u);
  EXPECT_EQ(Metric("submarine_authz_backend_errors_total"), 2u);
}

// (Forged principals never get this far: the call interceptor refuses them; see call_context.h.)
TEST_F(AuthorizerTest, AnonymousCallersAreRefusedWithoutAsking) {
  Make();
  rpc::CallInfo anonymous;
  EXPECT_EQ(authz_->Check(anonymous, kEnv, Permission::READ).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authz_->ListAccessible(anonymous, "projects/p", "environments", Permission::READ)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(backend_->checks.empty());
  EXPECT_TRUE(backend_->lists.empty());
}

TEST_F(AuthorizerTest, ServicesAreCheckedAsTheUserTheyActFor) {
  Make();
  backend_->allowed = {"users/alice projects/p/environments/e WRITE"};
  rpc::CallInfo svc;
  svc.principal.set_kind(Principal::SERVICE);
  svc.principal.set_service("notebook");
  svc.principal.set_user("alice");
  EXPECT_TRUE(authz_->Check(svc, kEnv, Permission::WRITE).ok());
  svc.principal.set_user("bob");
  EXPECT_EQ(authz_->Check(svc, kEnv, Permission::WRITE).code(),
            absl::StatusCode::kPermissionDenied);
  // A service acting for itself holds the internal secret: trusted.
  svc.principal.clear_user();
  EXPECT_TRUE(authz_->Check(svc, kEnv, Permission::ADMIN).ok());
  auto visible = authz_->ListAccessible(svc, "projects/p", "environments", Permission::READ);
  ASSERT_TRUE(visible.ok());
  EXPECT_TRUE(visible->all);
  EXPECT_EQ(backend_->checks.size(), 2u);
}

TEST_F(AuthorizerTest, ListAccessibleIsCachedAndKeepsOnlyTheCollection) {
  Make();
  backend_->list_answer.add_resources("projects/p/environments/a");
  backend_->list_answer.add_resources("projects/p/notebooks/n");     // another collection
  backend_->list_answer.add_resources("projects/q/environments/b");  // another project
  backend_->list_answer.add_resources("projects/p/environments/c");
  auto v = authz_->ListAccessible(User("alice"), "projects/p", "environments", Permission::READ);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->all);
  EXPECT_EQ(v->names,
            (std::vector<std::string>{"projects/p/environments/a", "projects/p/environments/c"}));
  auto again =
      authz_->ListAccessible(User("alice"), "projects/p", "environments", Permission::READ);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->names, v->names);
  EXPECT_EQ(backend_->lists.size(), 1u);

  backend_->list_answer.Clear();
  backend_->list_answer.set_all(true);
  authz_->InvalidateAll();
  auto all = authz_->ListAccessible(User("alice"), "projects/p", "environments", Permission::READ);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->all);
  EXPECT_EQ(backend_->lists.size(), 2u);
  EXPECT_EQ(backend_->lists[0], "users/alice projects/p environments");

  backend_->fail = absl::DeadlineExceededError("slow");
  authz_->InvalidateAll();
  auto failed =
      authz_->ListAccessible(User("alice"), "projects/p", "environments", Permission::READ);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(AuthorizerTest, AScopedTokenActsOnlyInsideItsProject) {
  Make();
  backend_->allowed = {
      "users/alice projects/p/environments/e READ", "users/alice projects/q/environments/e READ",
      "users/alice projects/pp/environments/e READ", "users/alice computeClusters/local READ",
      "users/alice computeClusters/local WRITE"};
  rpc::CallInfo workload = User("alice");
  workload.principal.set_scope("projects/p");
  EXPECT_TRUE(authz_->Check(workload, kEnv, Permission::READ).ok());
  for (const char* outside : {"projects/q/environments/e", "projects/pp/environments/e"}) {
    absl::Status st = authz_->Check(workload, outside, Permission::READ);
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << outside;
    EXPECT_EQ(Reason(st), "TOKEN_SCOPE") << outside;
  }
  // Platform resources: read, never changed, through a scoped token.
  EXPECT_TRUE(authz_->Check(workload, "computeClusters/local", Permission::READ).ok());
  EXPECT_EQ(Reason(authz_->Check(workload, "computeClusters/local", Permission::WRITE)),
            "TOKEN_SCOPE");
  EXPECT_EQ(Reason(authz_->ListAccessible(workload, "projects/q", "environments", Permission::READ)
                       .status()),
            "TOKEN_SCOPE");
  // The same user without the scope keeps every right.
  EXPECT_TRUE(authz_->Check(User("alice"), "projects/q/environments/e", Permission::READ).ok());
}

TEST(AuthorizerCreate, NeedsAnAddressOrTheExplicitInsecureFlag) {
  submarine::config::v1::PermissionClientConfig config;
  auto refused = Authorizer::Create(config, "environment");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetErrorInfo(refused.status(), &info));
  EXPECT_EQ(info.metadata().at("field"), "permission.address");

  config.set_insecure_no_authorization(true);
  auto insecure = Authorizer::Create(config, "environment");
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE((*insecure)->insecure());
  rpc::CallInfo anonymous;
  EXPECT_TRUE((*insecure)->Check(anonymous, kEnv, Permission::ADMIN).ok());
  EXPECT_TRUE((*insecure)->tasks().empty());

  config.set_insecure_no_authorization(false);
  config.set_address("127.0.0.1:1");
  config.set_subscribe_endpoint("tcp://127.0.0.1:2");
  auto secure = Authorizer::Create(config, "environment");
  ASSERT_TRUE(secure.ok());
  EXPECT_FALSE((*secure)->insecure());
  EXPECT_EQ((*secure)->tasks().size(), 1u);
}

TEST(InvalidatesAnswers, AccessEventsDoAndTokenQuotaLeaseCredentialEventsDoNot) {
  for (const char* t :
       {"AccessChanged", "UserChanged", "TeamChanged", "ProjectChanged", "SomethingAddedLater"}) {
    EXPECT_TRUE(InvalidatesAnswers(absl::StrCat("submarine.permission.v1.", t))) << t;
  }
  for (const char* t : {"TokenRevoked", "QuotaChanged", "LeaseChanged", "CredentialChanged",
                        "CredentialAccessed"}) {
    EXPECT_FALSE(InvalidatesAnswers(absl::StrCat("submarine.permission.v1.", t))) << t;
  }
  EXPECT_FALSE(InvalidatesAnswers("submarine.environment.v1.EnvironmentCreated"));
}

TEST(EventOptions, DeletionEventsNameTheirResource) {
  submarine::environment::v1::EnvironmentDeleted deleted;
  deleted.set_name("projects/p/environments/e");
  deleted.set_uid("u");
  EXPECT_EQ(events::DeletedResource("submarine.environment.v1.EnvironmentDeleted",
                                    deleted.SerializeAsString()),
            "projects/p/environments/e");
  submarine::environment::v1::EnvironmentCreated created;
  created.mutable_environment()->set_name("projects/p/environments/e");
  EXPECT_EQ(events::DeletedResource("submarine.environment.v1.EnvironmentCreated",
                                    created.SerializeAsString()),
            "");
  EXPECT_EQ(events::DeletedResource("submarine.unknown.v1.Deleted", "junk"), "");
}

TEST(AnswerCache, PutWithAStaleGenerationIsDropped) {
  FakeClock clock;
  AnswerCache<int> cache(10, std::chrono::seconds(1), clock);
  uint64_t gen = cache.generation();
  EXPECT_TRUE(cache.Put("a", 1, gen, clock.Now()));
  cache.InvalidateAll();
  EXPECT_FALSE(cache.Get("a").has_value());
  EXPECT_FALSE(cache.Put("b", 2, gen, clock.Now()));
  EXPECT_FALSE(cache.Get("b").has_value());
  EXPECT_TRUE(cache.Put("b", 2, cache.generation(), clock.Now()));
  EXPECT_EQ(cache.Get("b"), 2);
  // An answer that is already older than the TTL is not stored.
  EXPECT_FALSE(cache.Put("c", 3, cache.generation(), clock.Now() - std::chrono::seconds(2)));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(AnswerCache, ZeroCapacityCachesNothing) {
  FakeClock clock;
  AnswerCache<int> cache(0, std::chrono::seconds(1), clock);
  EXPECT_FALSE(cache.Put("a", 1, cache.generation(), clock.Now()));
  EXPECT_FALSE(cache.Get("a").has_value());
}

}  // namespace
}  // namespace submarine::authz
