// Deleting a project asks what it still holds in the other services (the ProjectHoldings hook,
// here a fake standing in for the services) and refuses while it holds anything, or while the
// answer cannot be had: otherwise whoever next created a project of that name would own what the
// old one left behind.

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "common/status/status.h"
#include "tests/integration/quota/permission_inprocess.h"

namespace submarine::permission::testing {
namespace {

using submarine::common::v1::Principal;
using P = PermissionInProcess;

// What the fake services say each project holds, and who asked.
struct FakeHoldings {
  std::mutex mu;
  std::map<std::string, std::map<std::string, int64_t>> held;  // "projects/x" → counts
  absl::Status failure;                                        // returned instead when set
  std::vector<std::string> asked;
  std::chrono::system_clock::time_point last_deadline;

  ProjectHoldings Hook() {
    return [this](const std::string& project, std::chrono::system_clock::time_point deadline)
               -> absl::StatusOr<std::map<std::string, int64_t>> {
      std::lock_guard lock(mu);
      asked.push_back(project);
      last_deadline = deadline;
      if (!failure.ok()) return failure;
      return held[project];
    };
  }
};

class ProjectDeletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InProcessOptions options;
    options.identity.project_holdings = fake_.Hook();
    auto started = PermissionInProcess::Start(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("alice").ok());
    ASSERT_TRUE(svc_->AddUser("bob").ok());
    ASSERT_TRUE(svc_->AddProject("x", "users/alice").ok());
  }

  grpc::Status Delete(const Principal& as, const std::string& name) {
    v1::DeleteProjectRequest req;
    req.set_name(name);
    v1::DeleteProjectResponse resp;
    return svc_->identity_stub->DeleteProject(svc_->As(as).get(), req, &resp);
  }

  bool Exists(const std::string& id) {
    auto rows = svc_->Query("SELECT 1 FROM projects WHERE project_id = $1", {id});
    return rows.ok() && !rows->empty();
  }

  FakeHoldings fake_;
  std::unique_ptr<PermissionInProcess> svc_;
};

TEST_F(ProjectDeletionTest, AProjectThatStillHoldsResourcesIsNotDeleted) {
  fake_.held["projects/x"] = {{"environments", 3}, {"experiments", 1}, {"notebooks", 0}};
  auto st = Delete(P::User("alice"), "projects/x");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "PROJECT_NOT_EMPTY");
  EXPECT_EQ(st.error_message(),
            "project \"projects/x\" still holds 3 environments and 1 experiment; delete them "
            "first");
  auto info = ErrorInfoOf(st);
  EXPECT_EQ(info.metadata().at("project"), "projects/x");
  EXPECT_EQ(info.metadata().at("environments"), "3");
  EXPECT_EQ(info.metadata().at("experiments"), "1");
  EXPECT_EQ(info.metadata().count("notebooks"), 0u);  // nothing held there
  EXPECT_TRUE(Exists("x"));
  {
    std::lock_guard lock(fake_.mu);
    ASSERT_EQ(fake_.asked, std::vector<std::string>{"projects/x"});
    // The call's deadline travels to the services asked.
    EXPECT_LT(fake_.last_deadline, std::chrono::system_clock::now() + std::chrono::seconds(31));
  }

  // Emptied: deleted, with its event.
  fake_.held["projects/x"] = {{"environments", 0}};
  st = Delete(P::User("alice"), "projects/x");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(Exists("x"));
  auto events = svc_->Query(
      "SELECT count(*) FROM outbox WHERE topic = 'submarine.permission.v1.ProjectChanged' "
      "AND resource = 'projects/x'");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0][0].as<int>(), 1);
}

TEST_F(ProjectDeletionTest, AnUnanswerableCheckFailsClosed) {
  fake_.failure = Unavailable("environment service at 10.0.0.7:9000 unreachable");
  auto st = Delete(P::User("alice"), "projects/x");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "PROJECT_HOLDINGS_UNKNOWN");
  // What went wrong inside is logged, not told.
  EXPECT_EQ(st.error_message().find("10.0.0.7"), std::string::npos) << st.error_message();
  EXPECT_TRUE(Exists("x"));
}

TEST_F(ProjectDeletionTest, OnlyWhoMayDeleteItLearnsWhatItHolds) {
  fake_.held["projects/x"] = {{"environments", 3}};
  // A stranger is refused before anything is asked; so is a missing project.
  EXPECT_EQ(Delete(P::User("bob"), "projects/x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Delete(P::User("bob"), "projects/nosuch").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Delete(P::Service("environment", ""), "projects/nosuch").error_code(),
            grpc::StatusCode::NOT_FOUND);
  std::lock_guard lock(fake_.mu);
  EXPECT_TRUE(fake_.asked.empty());
}

}  // namespace
}  // namespace submarine::permission::testing
