#include "tests/support/fake_kube/event_recorder.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr size_t kMaxRemembered = 4096;  // client-go's maxLruCacheEntries

}  // namespace

EventRecorder::EventRecorder(ObjectStore& store)
    : store_(store), events_(*store.catalog().Find("", "v1", "events")) {}

void EventRecorder::Record(const Source& source, const json& object, const std::string& field_path,
                           const std::string& type, const std::string& reason,
                           const std::string& message) {
  const json& meta = Field(object, "metadata");
  const std::string ns =
      StringField(meta, "namespace").empty() ? "default" : StringField(meta, "namespace");
  json involved = {{"kind", StringField(object, "kind")},
                   {"namespace", StringField(meta, "namespace")},
                   {"name", StringField(meta, "name")},
                   {"uid", StringField(meta, "uid")},
                   {"apiVersion", StringField(object, "apiVersion")},
                   {"resourceVersion", StringField(meta, "resourceVersion")}};
  if (!field_path.empty()) involved["fieldPath"] = field_path;
  // client-go's getEventKey: everything that makes two events the same but the object's version.
  const std::string key = absl::StrJoin(
      {source.component, source.host, StringField(involved, "kind"),
       StringField(involved, "namespace"), StringField(involved, "name"), field_path,
       StringField(involved, "uid"), StringField(involved, "apiVersion"), type, reason, message},
      "\x1f");
  const std::string now = NowRfc3339();
  absl::MutexLock lock(&mu_);
  if (auto it = recorded_.find(key); it != recorded_.end()) {
    auto updated = store_.Mutate(events_, it->second.first, it->second.second,
                                 /*status_write=*/false, Writer::kController, [&](json& event) {
                                   event["count"] = IntField(event, "count", 1) + 1;
                                   event["lastTimestamp"] = now;
                                   return absl::OkStatus();
                                 });
    if (updated.ok()) return;
    recorded_.erase(it);  // deleted meanwhile: record it afresh
  }
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", absl::StrFormat("%s.%x", StringField(meta, "name"), static_cast<uint64_t>(nanos))},
        {"namespace", ns}}},
      {"involvedObject", involved},
      {"reason", reason},
      {"message", message},
      {"source", json::object()},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1},
      {"type", type},
      {"eventTime", nullptr},
      {"reportingComponent", source.component},
      {"reportingInstance", source.host}};
  if (!source.component.empty()) event["source"]["component"] = source.component;
  if (!source.host.empty()) event["source"]["host"] = source.host;
  auto created = store_.Create(events_, ns, std::move(event));
  if (!created.ok()) return;
  if (recorded_.size() >= kMaxRemembered) recorded_.clear();
  recorded_[key] = {ns, StringField((*created)->json["metadata"], "name")};
}

}  // namespace submarine::testing::fake_kube
