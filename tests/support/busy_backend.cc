#include "tests/support/busy_backend.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/util/clock.h"
#include "tests/support/process.h"

namespace submarine::testing {

absl::StatusOr<std::unique_ptr<BusyBackend>> BusyBackend::Start(const std::string& conninfo,
                                                                std::chrono::seconds busy_for) {
  std::unique_ptr<BusyBackend> busy(new BusyBackend());
  const std::string name = "busy-" + IdGenerator::Secure().RandomHex(4);
  busy->thread_ = std::jthread([conninfo, name, busy_for] {
    try {
      pqxx::connection c(conninfo);
      pqxx::nontransaction tx(c);
      tx.exec(absl::StrCat("SET application_name = '", name, "'"));
      tx.exec(absl::StrCat("SET statement_timeout = '", busy_for.count(), "s'"));
      tx.exec("DO $$BEGIN LOOP END LOOP; END$$");
    } catch (const std::exception&) {
      // Ended by its timeout, or its connection lost with the postmaster: either is expected.
    }
  });
  pid_t pid = 0;
  bool running = WaitFor([&] {
    try {
      pqxx::connection c(conninfo);
      pqxx::nontransaction tx(c);
      auto r = tx.exec_params(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
          name);
      if (r.size() != 1) return false;
      pid = r[0][0].as<pid_t>();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  });
  if (!running) return absl::DeadlineExceededError("the busy backend did not start in 30 s");
  busy->pid_ = pid;
  return busy;
}

BusyBackend::~BusyBackend() = default;  // std::jthread joins

}  // namespace submarine::testing
