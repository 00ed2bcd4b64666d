#include "common/db/periodic_leader_task.h"

#include "common/db/leader.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::db {

absl::Status PeriodicLeaderTask::Start() {
  if (!options_.run || options_.period.count() <= 0) {
    return InvalidField("period", "a periodic task needs a function and a positive period");
  }
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void PeriodicLeaderTask::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicLeaderTask::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

int PeriodicLeaderTask::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

void PeriodicLeaderTask::Loop() {
  LeaderLock leader(options_.conninfo, options_.name);
  auto log = log::Get("housekeeping");
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (leader.TryLead()) {
      absl::Status st = options_.run();
      if (!st.ok()) log->warn("{} failed: {}", options_.name, Message(st));
      lock.lock();
      if (st.ok()) ++runs_;
    } else {
      lock.lock();
    }
    cv_.wait_for(lock, options_.period, [this] { return stop_ || wake_; });
    wake_ = false;
  }
}

}  // namespace submarine::db
