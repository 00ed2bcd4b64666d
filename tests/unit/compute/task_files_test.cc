#include "common/compute/task_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/compute/task_supervisor.h"
#include "tests/support/process.h"

namespace submarine::compute::local {
namespace {

TEST(TaskFiles, RecordsReadBackWhatWasWritten) {
  TaskPlan plan;
  plan.workload_id = "w";
  plan.task = {"worker", 2};
  plan.argv = {"/bin/sh", "-c", "echo \"a b\""};
  plan.env = {{"A", "1"}, {"TF_CONFIG", "{\"cluster\":{}}"}};
  plan.max_restarts = 3;
  plan.memory_bytes = int64_t{1} << 40;
  auto plan_back = PlanFromJson(ToJson(plan));
  ASSERT_TRUE(plan_back.ok()) << plan_back.status();
  EXPECT_EQ(plan_back->task, plan.task);
  EXPECT_EQ(plan_back->argv, plan.argv);
  EXPECT_EQ(plan_back->env, plan.env);
  EXPECT_EQ(plan_back->memory_bytes, plan.memory_bytes);

  TaskOutcome outcome;
  outcome.phase = Phase::kKilled;
  outcome.signal = 9;
  outcome.attempt = 2;
  outcome.message = "stopped on request";
  auto outcome_back = OutcomeFromJson(ToJson(outcome));
  ASSERT_TRUE(outcome_back.ok()) << outcome_back.status();
  EXPECT_EQ(outcome_back->phase, Phase::kKilled);
  EXPECT_EQ(outcome_back->signal, 9);
  EXPECT_FALSE(outcome_back->exit_code.has_value());
  EXPECT_EQ(outcome_back->attempt, 2);

  EXPECT_FALSE(OutcomeFromJson("{\"phase\": \"RUNNING\"}").ok()) << "a status file is final";
  EXPECT_FALSE(PlanFromJson("{}").ok());
  EXPECT_FALSE(SupervisorRecordFromJson("not json").ok());
}

// nvidia-smi's CSV answers: the task's processes' memory on any GPU, its own GPUs' utilization.
TEST(TaskFiles, GpuUsageCountsTheTasksProcessesAndAveragesItsGpus) {
  const std::string apps = "101, 300\n202, 1000\n103, [N/A]\n104, 50\n";
  const std::string gpus =
      "0, GPU-aaaa, 70\n1, GPU-bbbb, 10\n2, GPU-cccc, [Not Supported]\n3, GPU-dddd, 90\n";
  GpuUsage g = ParseGpuUsage(apps, gpus, {101, 103, 104}, {"0", "GPU-dddd", "2"});
  EXPECT_EQ(g.memory_bytes, int64_t{350} << 20);
  EXPECT_EQ(g.max_memory_bytes, g.memory_bytes);
  EXPECT_DOUBLE_EQ(g.utilization, 80);  // GPUs 0 and 3 (by UUID); 2 says nothing
  GpuUsage none = ParseGpuUsage("", "garbage\n", {1}, {"0"});
  EXPECT_EQ(none.memory_bytes, 0);
  EXPECT_DOUBLE_EQ(none.utilization, 0);

  TaskUsage u{1, 2, 3, GpuUsage{4, 5, 6.5}};
  auto back = UsageFromJson(ToJson(u));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->gpu.has_value());
  EXPECT_EQ(back->gpu->max_memory_bytes, 5);
  EXPECT_DOUBLE_EQ(back->gpu->utilization, 6.5);
  auto without = UsageFromJson(ToJson(TaskUsage{1, 2, 3, std::nullopt}));
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->gpu.has_value());
}

TEST(TaskFiles, AtomicWritesReplaceWholeFiles) {
  const std::string dir = submarine::testing::MakeTempDir("task-files");
  const std::string path = dir + "/status.json";
  EXPECT_TRUE(absl::IsNotFound(ReadSmallFile(path).status()));
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer").ok());
  EXPECT_EQ(*ReadSmallFile(path), "second, longer");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1) << "no temp file left";
  EXPECT_EQ(WriteFileAtomically(dir + "/missing/x", "x").code(), absl::StatusCode::kUnavailable);
  std::filesystem::remove_all(dir);
}

TEST(TaskFiles, AProcessIsIdentifiedByPidBootAndStartTime) {
  auto self = IdentityOf(::getpid());
  ASSERT_TRUE(self.ok());
  EXPECT_TRUE(IsAlive(*self));
  ProcessIdentity reused = *self;
  reused.start_ticks += 1;  // same pid, another process
  EXPECT_FALSE(IsAlive(reused));
  ProcessIdentity rebooted = *self;
  rebooted.boot_id = "another-boot";
  EXPECT_FALSE(IsAlive(rebooted));

  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  auto zombie_to_be = IdentityOf(child);  // not reaped yet: its /proc entry stays
  ASSERT_TRUE(zombie_to_be.ok());
  ASSERT_TRUE(submarine::testing::WaitFor([&] {
    auto st = ReadProcStat(child);
    return st && st->state == 'Z';
  }));
  EXPECT_FALSE(IsAlive(*zombie_to_be)) << "a zombie is not alive";
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(ReadProcStat(child).has_value());
}

TEST(TaskFiles, WaitStatusesAreDescribed) {
  EXPECT_EQ(DescribeWaitStatus(3 << 8), "exit code 3");
  EXPECT_EQ(DescribeWaitStatus(SIGKILL), "killed by signal 9 (SIGKILL)");
}

TEST(TaskSupervisorArgs, AreParsed) {
  const char* argv[] = {"sup", "--detach", "--task-dir", "/x", "--ready-fd", "3"};
  auto args = ParseSupervisorArgs(6, const_cast<char**>(argv));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->detach);
  EXPECT_EQ(args->task_dir, "/x");
  EXPECT_EQ(args->ready_fd, 3);
  const char* missing[] = {"sup", "--ready-fd", "3"};
  EXPECT_FALSE(ParseSupervisorArgs(3, const_cast<char**>(missing)).ok());
  const char* bad_fd[] = {"sup", "--task-dir", "/x", "--ready-fd", "three"};
  EXPECT_FALSE(ParseSupervisorArgs(5, const_cast<char**>(bad_fd)).ok());
  const char* unknown[] = {"sup", "--task-dir", "/x", "--verbose"};
  EXPECT_FALSE(ParseSupervisorArgs(4, const_cast<char**>(unknown)).ok());
}

}  // namespace
}  // namespace submarine::compute::local
