// db::PostgresCluster after a crash, on a cluster of its own: a postmaster killed with SIGKILL
// while a backend still holds its shared memory is started again on the first attempt (the
// backend is waited for, or killed once the grace period is over); a lock
// file whose pid now belongs to another process does not block a start; a failed start quotes
// what the server logged during that attempt and never initdb's transcript; an existing cluster
// is never initialised again.
#include "common/db/postgres_cluster.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/net/address.h"
#include "common/util/clock.h"
#include "tests/support/busy_backend.h"
#include "tests/support/process.h"

namespace submarine::db {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// What initdb prints; none of it belongs in an error about starting the server.
constexpr char kInitdbTranscript[] = "The files belonging to this database system";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Processes attached to the System V segment postmaster.pid records (line 7: key and id).
long SegmentAttachments(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  std::string line;
  for (int i = 0; i < 7 && std::getline(in, line); ++i) {
  }
  std::istringstream shm(line);
  long key = 0, id = -1;
  if (!(shm >> key >> id)) return -1;
  struct shmid_ds ds {};
  if (::shmctl(static_cast<int>(id), IPC_STAT, &ds) != 0) return 0;
  return static_cast<long>(ds.shm_nattch);
}

// The pid postmaster.pid records (read here, not through the class under test); 0 if none.
pid_t RecordedPostmaster(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  long pid = 0;
  return (in >> pid) ? static_cast<pid_t>(pid) : 0;
}

// Whether `pid` has exited (a zombie waiting for its new parent to reap it counts).
bool Gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z';
}

size_t SizeOf(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

bool CanQuery(const PostgresCluster& cluster) {
  try {
    pqxx::connection c(cluster.SuperuserConnInfo());
    pqxx::nontransaction tx(c);
    return tx.exec("SELECT 1")[0][0].as<int>() == 1;
  } catch (const std::exception&) {
    return false;
  }
}

// A live process of the user PostgreSQL runs as (`postgres` when this test runs as root), doing
// nothing until it is destroyed.
class PidHolder {
 public:
  PidHolder() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) return;
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::geteuid() == 0 && (::setgid(gid) != 0 || ::setuid(uid) != 0)) ::_exit(1);
      for (;;) ::pause();
    }
  }
  ~PidHolder() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  PidHolder(const PidHolder&) = delete;
  PidHolder& operator=(const PidHolder&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

class PostgresClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Under /tmp: as root PostgreSQL runs as `postgres`, which cannot enter the build tree.
    dir_ = new std::string(
        absl::StrCat("/tmp/submarine-pgcluster-", IdGenerator::Secure().RandomHex(6)));
    cluster_ = new PostgresCluster(PostgresCluster::Options{*dir_, 0, /*durable=*/false});
    absl::Status st = cluster_->InitIfNeeded();
    ASSERT_TRUE(st.ok()) << st;
  }
  static void TearDownTestSuite() {
    if (cluster_ != nullptr) (void)cluster_->Stop();
    std::error_code ec;
    if (dir_ != nullptr) fs::remove_all(*dir_, ec);
    delete cluster_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  static inline std::string* dir_ = nullptr;
  static inline PostgresCluster* cluster_ = nullptr;
};

TEST_F(PostgresClusterTest, StartsOnTheFirstAttemptAfterThePostmasterIsKilled) {
  if (!cluster_->Running()) {
    ASSERT_TRUE(cluster_->Start().ok());
  }
  ASSERT_TRUE(CanQuery(*cluster_));
  // Holds the shared memory for 4 s after the kill (busy_backend.h).
  auto busy = testing::BusyBackend::Start(cluster_->SuperuserConnInfo(), seconds(4));
  ASSERT_TRUE(busy.ok()) << busy.status();
  const pid_t killed = RecordedPostmaster(cluster_->data_dir());
  ASSERT_GT(killed, 0);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  ASSERT_TRUE(testing::WaitFor([] { return !cluster_->Running(); }, seconds(10)));
  ASSERT_GT(SegmentAttachments(cluster_->data_dir()), 0)
      << "the killed postmaster's backend should still hold its shared memory";

  const size_t initdb_log_size = SizeOf(*dir_ + "/initdb.log");
  const auto pg_version_time = fs::last_write_time(cluster_->data_dir() + "/PG_VERSION");
  absl::Status st = cluster_->Start();  // the first attempt
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(cluster_->Running());
  EXPECT_NE(RecordedPostmaster(cluster_->data_dir()), killed);
  EXPECT_TRUE(CanQuery(*cluster_));

  // The cluster exists: initdb is not run again, and its transcript is not read again.
  ASSERT_TRUE(cluster_->InitIfNeeded().ok());
  EXPECT_EQ(SizeOf(*dir_ + "/initdb.log"), initdb_log_size);
  EXPECT_EQ(fs::last_write_time(cluster_->data_dir() + "/PG_VERSION"), pg_version_time);
  EXPECT_EQ(ReadAll(*dir_ + "/pg_ctl.log").find(kInitdbTranscript), std::string::npos);
}

// A backend that would hold the dead postmaster's memory for a minute is killed after the grace
// period instead of blocking the restart that long.
TEST_F(PostgresClusterTest, BackendsStillAttachedAfterTheGraceAreKilled) {
  if (!cluster_->Running()) {
    ASSERT_TRUE(cluster_->Start().ok());
  }
  auto busy = testing::BusyBackend::Start(cluster_->SuperuserConnInfo(), seconds(60));
  ASSERT_TRUE(busy.ok()) << busy.status();
  const pid_t backend = (*busy)->pid();
  const pid_t killed = RecordedPostmaster(cluster_->data_dir());
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  ASSERT_TRUE(testing::WaitFor([] { return !cluster_->Running(); }, seconds(10)));
  ASSERT_GT(SegmentAttachments(cluster_->data_dir()), 0);

  absl::Status cleared = cluster_->ClearStaleLock(std::chrono::milliseconds(300));
  ASSERT_TRUE(cleared.ok()) << cleared;
  EXPECT_EQ(SegmentAttachments(cluster_->data_dir()), -1) << "postmaster.pid is removed";
  EXPECT_TRUE(testing::WaitFor([backend] { return Gone(backend); }, seconds(5)))
      << "backend " << backend << " still runs";
  absl::Status st = cluster_->Start();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(CanQuery(*cluster_));
}

TEST_F(PostgresClusterTest, ALockFileWhosePidWasReusedDoesNotBlockAStart) {
  if (cluster_->Running()) {
    ASSERT_TRUE(cluster_->Stop().ok());
  }
  const std::string pid_file = cluster_->data_dir() + "/postmaster.pid";
  // As if the postmaster died and its pid went to another live process, one PostgreSQL may
  // signal (its own user's): PostgreSQL itself would refuse to start ("lock file already
  // exists").
  PidHolder other;
  ASSERT_GT(other.pid(), 0);
  std::ofstream(pid_file) << other.pid() << "\n"
                          << cluster_->data_dir() << "\n1700000000\n"
                          << cluster_->port() << "\n"
                          << cluster_->socket_dir() << "\n127.0.0.1\n  5432001   999999\nready\n";
  EXPECT_FALSE(cluster_->Running()) << "pid " << other.pid() << " is no postmaster of the cluster";
  absl::Status st = cluster_->Start();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(cluster_->Running());
  EXPECT_NE(RecordedPostmaster(cluster_->data_dir()), other.pid());
  EXPECT_TRUE(CanQuery(*cluster_));
  // And a start while it runs is refused, naming the running server, not attempted.
  absl::Status again = cluster_->Start();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_TRUE(cluster_->Running());
}

TEST_F(PostgresClusterTest, AFailedStartQuotesTheServerLogOfThatAttemptOnly) {
  if (cluster_->Running()) {
    ASSERT_TRUE(cluster_->Stop().ok());
  }
  auto taken = net::ListenTcp("127.0.0.1:0");
  ASSERT_TRUE(taken.ok()) << taken.status();
  std::string host;
  int port = 0;
  ASSERT_TRUE(net::SplitHostPort(taken->address, &host, &port).ok());
  PostgresCluster on_taken_port(PostgresCluster::Options{*dir_, port, false});
  absl::Status st = on_taken_port.Start();
  ::close(taken->fd);
  ASSERT_FALSE(st.ok());
  const std::string message(st.message());
  EXPECT_NE(message.find("could not bind"), std::string::npos) << message;
  EXPECT_EQ(message.find(kInitdbTranscript), std::string::npos) << message;
  EXPECT_LT(message.size(), 2000u) << message;
  EXPECT_FALSE(on_taken_port.Running());
}

}  // namespace
}  // namespace submarine::db
