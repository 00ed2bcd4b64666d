#include "common/events/event_options.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>

#include <memory>

namespace submarine::events {

using google::protobuf::DescriptorPool;

const submarine::common::v1::EventOptions& OptionsOfTopic(const std::string& topic) {
  const auto* message = DescriptorPool::generated_pool()->FindMessageTypeByName(topic);
  if (message == nullptr) {
    static const auto* unknown = [] {
      auto* o = new submarine::common::v1::EventOptions();
      o->set_affects_access(true);
      o->set_affects_tokens(true);
      return o;
    }();
    return *unknown;
  }
  return message->options().GetExtension(submarine::common::v1::event);
}

std::string DeletedResource(const std::string& topic, const std::string& payload) {
  const auto* descriptor = DescriptorPool::generated_pool()->FindMessageTypeByName(topic);
  if (descriptor == nullptr) return "";
  const std::string& field_name =
      descriptor->options().GetExtension(submarine::common::v1::event).deleted_resource_field();
  if (field_name.empty()) return "";
  const auto* field = descriptor->FindFieldByName(field_name);
  if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
      field->is_repeated()) {
    return "";
  }
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  if (!message->ParseFromString(payload)) return "";
  return message->GetReflection()->GetString(*message, field);
}

}  // namespace submarine::events
