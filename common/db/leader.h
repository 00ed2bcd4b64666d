#pragma once
// Leader election for background loops (event relay, reconcilers): a PostgreSQL session-level
// advisory lock held on a dedicated connection. Whoever holds the lock leads; if the process or
// its connection dies, PostgreSQL releases the lock and another replica takes over.
// Not thread-safe: owned by the one thread that runs the loop.

#include <pqxx/pqxx>

#include <memory>
#include <string>

namespace submarine::db {

class LeaderLock {
 public:
  // `name` identifies the loop, e.g. "environment.outbox-relay".
  LeaderLock(std::string conninfo, std::string name);
  ~LeaderLock();

  // True if this process holds the lock after the call: tries to take it when not held, and
  // checks the connection is alive when held (a lost connection means lost leadership).
  bool TryLead();
  // Gives the lock up (closing the connection).
  void Release();
  bool leading() const { return leading_; }

 private:
  std::string conninfo_;
  std::string name_;
  std::unique_ptr<pqxx::connection> conn_;
  bool leading_ = false;
};

}  // namespace submarine::db
