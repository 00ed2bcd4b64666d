#pragma once
// The write side of the transactional outbox (ARCHITECTURE.md section 4): a service writes its
// business rows and the event describing them in ONE transaction, so an event exists if and only
// if the change committed. Nothing here touches ZeroMQ; OutboxRelay publishes later.

#include <google/protobuf/message.h>

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/db/migrations.h"
#include "common/db/statement.h"

namespace submarine::events {

// Migrations of the event tables (outbox, outbox_cursor, event_consumers, inbox,
// consumer_offsets) in a service's schema; apply with
// db::ApplyMigrations(conn, schema, "events", EventsMigrations()). Embedded from
// common/events/migrations at build time.
std::vector<db::Migration> EventsMigrations();

// Every named statement of common/events ("events.*": outbox, relay, EventLog, subscriber inbox,
// retention). Every pool the events code runs on must prepare it:
// ConnectionPool::Options::statements gets &events::Statements() (the service host's pool does).
// Lives for the program.
const db::StatementSet& Statements();

// Writes one event into the outbox inside the caller's business transaction (search_path is the
// service schema). topic = payload.GetDescriptor()->full_name(); the event gets a fresh UUID as
// its event id and the insert time as occurred_at. Also queues a NOTIFY (delivered at commit)
// that wakes the schema's relay. Never touches ZeroMQ. Returns INTERNAL if the payload does not
// serialize; SQL errors are thrown (libpqxx exceptions) so that ConnectionPool::Transact, which
// runs the business transaction, maps them and retries what is safe to retry.
absl::Status AppendToOutbox(pqxx::work& tx, const google::protobuf::Message& payload,
                            const std::string& resource, const std::string& request_id,
                            const std::string& principal = "");

}  // namespace submarine::events
