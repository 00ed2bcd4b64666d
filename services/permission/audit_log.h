#pragma once
// How the permission service consumes the events of every service (its own stream and each of
// common.peers with a topic prefix): one events::Subscriber per publisher, added through the
// service host (ServiceHost::Subscribe), applies each event exactly once, in order, with
// ApplyServiceEvent, in the transaction that also records its inbox row and offset.
//
// ApplyServiceEvent
//   * records the event in the audit log (audit_events), queried with
//     AuditService.ListAuditEvents;
//   * when the event records the deletion of a resource (its message declares
//     deleted_resource_field, events/event_options.h), deletes every grant on that resource and
//     on anything below it, and publishes AccessChanged{DELETED} for each, so a resource
//     re-created under the same name never inherits the old grantees and permission caches drop
//     their answers. A service written later gets this by declaring its deletion events.

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::permission {

absl::Status ApplyServiceEvent(pqxx::work& tx, const submarine::common::v1::Event& event);

}  // namespace submarine::permission
