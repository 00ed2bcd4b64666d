#include "services/permission/audit_log.h"

#include "common/events/event_options.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/permission/audit_store.h"
#include "services/permission/permission_store.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

absl::Status ApplyServiceEvent(pqxx::work& tx, const submarine::common::v1::Event& event) {
  AuditStore::Record(tx, event);
  std::string deleted = events::DeletedResource(event.topic(), event.payload());
  // A project's own grants and bindings go with the project (its rows cascade); this is for the
  // resources inside projects that other services hold.
  constexpr std::string_view kProjects = "projects/";
  if (!deleted.starts_with(kProjects) || deleted.find('/', kProjects.size()) == std::string::npos) {
    return absl::OkStatus();
  }
  for (const auto& [resource, subject] : PermissionStore::DeleteGrantsUnder(tx, deleted)) {
    v1::AccessChanged changed;
    changed.set_resource(resource);
    changed.set_subject(subject);
    changed.set_change(v1::DELETED);
    SUBMARINE_RETURN_IF_ERROR(events::AppendToOutbox(tx, changed, resource,
                                                     event.header().request_id(),
                                                     event.header().principal()));
  }
  return absl::OkStatus();
}

}  // namespace submarine::permission
