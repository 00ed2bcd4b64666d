#include "common/db/leader.h"

#include "common/log/log.h"

namespace submarine::db {

LeaderLock::LeaderLock(std::string conninfo, std::string name)
    : conninfo_(std::move(conninfo)), name_(std::move(name)) {}

LeaderLock::~LeaderLock() { Release(); }

bool LeaderLock::TryLead() {
  try {
    if (!conn_ || !conn_->is_open()) {
      if (leading_) log::Get("leader")->warn("lost leadership of {}: connection closed", name_);
      leading_ = false;
      conn_ = std::make_unique<pqxx::connection>(conninfo_);
    }
    pqxx::nontransaction tx(*conn_);
    if (leading_) {
      tx.exec("SELECT 1");
      return true;
    }
    auto r = tx.exec("SELECT pg_try_advisory_lock(hashtext(" + tx.quote(name_) + "))");
    leading_ = r[0][0].as<bool>();
    if (leading_) log::Get("leader")->info("leading {}", name_);
    return leading_;
  } catch (const std::exception& e) {
    if (leading_) log::Get("leader")->warn("lost leadership of {}: {}", name_, e.what());
    leading_ = false;
    conn_.reset();
    return false;
  }
}

void LeaderLock::Release() {
  if (leading_ && conn_) {
    // Unlock explicitly: a closed socket frees the lock only once the backend has exited.
    try {
      pqxx::nontransaction tx(*conn_);
      tx.exec("SELECT pg_advisory_unlock(hashtext(" + tx.quote(name_) + "))");
    } catch (const std::exception&) {
    }
  }
  leading_ = false;
  conn_.reset();
}

}  // namespace submarine::db
