#pragma once
// Statements of common/events run prepared: each is prepared on a connection the first time it
// is used there (libpqxx registers the definition and sends PREPARE lazily), because the events
// code borrows connections from pools whose on_connect hook belongs to the owning service.
// Names are prefixed "submarine_events." so they never clash with a service's own statements.

#include <pqxx/pqxx>
#include <string>
#include <utility>

namespace submarine::events {

template <typename... Args>
pqxx::result ExecPrepared(pqxx::transaction_base& tx, const char* name, const char* sql,
                          Args&&... args) {
  std::string full = std::string("submarine_events.") + name;
  tx.conn().prepare(full, sql);
  return tx.exec_prepared(full, std::forward<Args>(args)...);
}

}  // namespace submarine::events
