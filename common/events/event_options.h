#pragma once
// What an event means to the platform, read from the EventOptions its message declares
// (proto/submarine/common/v1/options.proto): whether it changes access or token validity, and
// which field names a deleted resource. Caches and the permission service decide by these, never
// by lists of topics, so a service written later gets cache invalidation and grant clean-up by
// declaring its events.

#include <string>

#include "submarine/common/v1/options.pb.h"

namespace submarine::events {

// The options of the message a topic names (topic = the message's full name, see outbox.h). A
// topic no linked message has (a newer publisher's event) errs on the side of freshness:
// affects_access and affects_tokens, no deleted resource.
const submarine::common::v1::EventOptions& OptionsOfTopic(const std::string& topic);

// The deleted resource an event records: the value of its deleted_resource_field, parsed from
// `payload` (the serialized message of `topic`); empty when the event records no deletion or the
// field is empty.
std::string DeletedResource(const std::string& topic, const std::string& payload);

}  // namespace submarine::events
