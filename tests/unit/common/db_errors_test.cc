// What a client learns from a database or exception failure: db::StatusFromCurrentException
// answers fixed text (naming the request id for INTERNAL) and logs the exception's own text with
// the request id, so no SQL, constraint, address or C++ internals reach an error message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <new>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/db/pool.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::db {
namespace {

// Text a database or a library puts in its exceptions, none of which may reach a client.
const std::vector<std::string>& Leaks() {
  static const auto* v = new std::vector<std::string>{
      "ERROR:",   "DETAIL:", "syntax error", "SELECT",       "environments_pkey",
      "10.1.2.3", "5432",    "basic_string", "_M_construct", "std::",
      "42601",    "pqxx"};
  return *v;
}

void ExpectNoLeak(const absl::Status& st) {
  std::string text = Message(st);
  google::rpc::ErrorInfo info;
  if (GetErrorInfo(st, &info)) {
    for (const auto& [k, v] : info.metadata()) text += " " + k + "=" + v;
  }
  for (const std::string& leak : Leaks()) {
    EXPECT_EQ(text.find(leak), std::string::npos) << "\"" << leak << "\" in: " << text;
  }
}

template <typename F>
absl::Status Catch(F&& thrower) {
  try {
    thrower();
  } catch (...) {
    return StatusFromCurrentException();
  }
  return absl::OkStatus();
}

class DbErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::string(::testing::TempDir()) + "/db-errors-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    config::v1::LogConfig config;
    config.set_file(path_);
    Init(config);
  }
  void TearDown() override { spdlog::shutdown(); }

  static void Init(const config::v1::LogConfig& config) { log::Init(config, "dberrors"); }

  std::string Logged() {
    spdlog::shutdown();  // flushes and closes the file
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string path_;
};

TEST_F(DbErrorsTest, SqlErrorAnswersAGenericMessageNamingTheRequestAndLogsTheText) {
  absl::Status st;
  {
    log::ScopedRequestId bind("req-0042");
    st = Catch([] {
      throw pqxx::sql_error(
          "ERROR:  syntax error at or near \"SELEC\"\nLINE 1: SELECT * FROM environments\n",
          "SELECT * FROM environments WHERE id = $1", "42601");
    });
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(st), "internal error; see the service log for request req-0042");
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetErrorInfo(st, &info));
  EXPECT_EQ(info.reason(), "INTERNAL_ERROR");
  EXPECT_EQ(info.metadata().at("requestId"), "req-0042");
  ExpectNoLeak(st);

  std::string logged = Logged();
  EXPECT_NE(logged.find("[req-0042]"), std::string::npos) << logged;
  EXPECT_NE(logged.find("syntax error at or near"), std::string::npos) << logged;
  EXPECT_NE(logged.find("42601"), std::string::npos) << logged;
}

TEST_F(DbErrorsTest, EveryDatabaseFailureAnswersFixedText) {
  log::ScopedRequestId bind("req-7");
  struct Case {
    const char* what;
    absl::StatusCode code;
    std::function<void()> thrower;
  };
  const std::vector<Case> cases = {
      {"unique violation", absl::StatusCode::kAlreadyExists,
       [] {
         throw pqxx::unique_violation(
             "ERROR:  duplicate key value violates unique constraint \"environments_pkey\"\n"
             "DETAIL:  Key (project, environment_id)=(p, e) already exists.\n",
             "INSERT INTO environments ...", "23505");
       }},
      {"lost connection", absl::StatusCode::kUnavailable,
       [] {
         throw pqxx::broken_connection(
             "could not connect to server: Connection refused\n\tIs the server running on host "
             "\"10.1.2.3\" and accepting TCP/IP connections on port 5432?\n");
       }},
      {"commit in doubt", absl::StatusCode::kUnavailable,
       [] { throw pqxx::in_doubt_error("ERROR:  server closed the connection during COMMIT"); }},
      {"admin shutdown", absl::StatusCode::kUnavailable,
       [] {
         throw pqxx::sql_error("ERROR:  terminating connection due to administrator command",
                               "SELECT 1", "57P01");
       }},
      {"connection failure", absl::StatusCode::kUnavailable,
       [] { throw pqxx::sql_error("ERROR:  host 10.1.2.3:5432 went away", "SELECT 1", "08006"); }},
      {"statement timeout", absl::StatusCode::kDeadlineExceeded,
       [] {
         throw pqxx::sql_error("ERROR:  canceling statement due to statement timeout",
                               "SELECT pg_sleep(1)", "57014");
       }},
      {"conversion", absl::StatusCode::kInternal,
       [] { throw pqxx::conversion_error("Could not convert string to int: 'x' (pqxx)"); }},
      {"std::exception", absl::StatusCode::kInternal,
       [] { throw std::logic_error("basic_string::_M_construct null not valid"); }},
      {"bad_alloc", absl::StatusCode::kInternal, [] { throw std::bad_alloc(); }},
      {"non-standard", absl::StatusCode::kInternal, [] { throw 42; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::Status st = Catch(c.thrower);
    EXPECT_EQ(st.code(), c.code) << st;
    ExpectNoLeak(st);
    if (c.code == absl::StatusCode::kInternal) {
      EXPECT_EQ(Message(st), "internal error; see the service log for request req-7");
    }
  }
}

TEST_F(DbErrorsTest, WithoutARequestTheMessageNamesTheLogOnly) {
  absl::Status st = Catch([] { throw std::runtime_error("std::terminate called"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(st), "internal error; see the service log");
  EXPECT_NE(Logged().find("std::terminate called"), std::string::npos);
}

}  // namespace
}  // namespace submarine::db
