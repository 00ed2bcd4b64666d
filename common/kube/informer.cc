#include "common/kube/informer.h"

#include <cstdlib>

#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::kube {
namespace {

using json = nlohmann::json;

std::string NameOf(const json& object) {
  return object.value("metadata", json::object()).value("name", "");
}

std::string LabelOf(const json& object, const std::string& label) {
  if (label.empty()) return "";
  const json& labels = object.value("metadata", json::object()).value("labels", json::object());
  auto it = labels.find(label);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : "";
}

// resourceVersions are opaque, but one server's are increasing integers (etcd revisions); a
// version that is not an integer is treated as newer.
bool Newer(const json& a, const json& b) {
  auto rv = [](const json& o) {
    std::string s = o.value("metadata", json::object()).value("resourceVersion", "");
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    return (s.empty() || *end != '\0') ? ~0ull : v;
  };
  return rv(a) >= rv(b);
}

}  // namespace

Informer::Informer(Client* client, Options options)
    : client_(client), options_(std::move(options)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return synced_ || stop_.load(); }) && synced_;
}

bool Informer::synced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

std::optional<json> Informer::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> Informer::ByIndex(const std::string& value) const {
  std::lock_guard lock(mu_);
  std::vector<json> out;
  auto it = index_.find(value);
  if (it == index_.end()) return out;
  for (const std::string& name : it->second) out.push_back(objects_.at(name));
  return out;
}

std::vector<std::string> Informer::Names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(objects_.size());
  for (const auto& [name, object] : objects_) out.push_back(name);
  return out;
}

std::vector<json> Informer::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<json> out;
  out.reserve(objects_.size());
  for (const auto& [name, object] : objects_) out.push_back(object);
  return out;
}

void Informer::Apply(const json& object) { Upsert(object, /*only_if_newer=*/true); }

void Informer::Forget(const std::string& name) { Remove(name); }

void Informer::Upsert(const json& object, bool only_if_newer) {
  Change change;
  change.name = NameOf(object);
  if (change.name.empty()) return;
  {
    std::lock_guard lock(mu_);
    auto it = objects_.find(change.name);
    if (it != objects_.end()) {
      if (only_if_newer && !Newer(object, it->second)) return;
      change.index_before = LabelOf(it->second, options_.index_label);
      if (!change.index_before.empty()) index_[change.index_before].erase(change.name);
    }
    objects_[change.name] = object;
    change.index_after = LabelOf(object, options_.index_label);
    if (!change.index_after.empty()) index_[change.index_after].insert(change.name);
  }
  if (options_.on_change) options_.on_change(change);
}

void Informer::Remove(const std::string& name) {
  Change change;
  change.name = name;
  {
    std::lock_guard lock(mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return;
    const std::string value = LabelOf(it->second, options_.index_label);
    if (!value.empty()) {
      index_[value].erase(name);
      if (index_[value].empty()) index_.erase(value);
    }
    change.index_before = value;
    objects_.erase(it);
  }
  if (options_.on_change) options_.on_change(change);
}

void Informer::Replace(std::vector<json> items) {
  {
    std::lock_guard lock(mu_);
    objects_.clear();
    index_.clear();
    for (json& item : items) {
      const std::string name = NameOf(item);
      if (name.empty()) continue;
      const std::string value = LabelOf(item, options_.index_label);
      if (!value.empty()) index_[value].insert(name);
      objects_[name] = std::move(item);
    }
    synced_ = true;
  }
  cv_.notify_all();
  if (options_.on_change) options_.on_change(Change{.everything = true});
}

bool Informer::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

void Informer::Run() {
  auto backoff = options_.min_backoff;
  auto fail = [&](const absl::Status& s, const char* what) {
    log::Get("kube")->warn("{} {}: {}", what, options_.collection_path, Message(s));
    bool go_on = Sleep(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
    return go_on;
  };
  while (!stop_) {
    auto listed = client_->List(options_.collection_path, options_.label_selector);
    lists_.fetch_add(1);
    if (!listed.ok()) {
      if (!fail(listed.status(), "list")) return;
      continue;
    }
    std::string version = listed->resource_version;
    Replace(std::move(listed->items));
    backoff = options_.min_backoff;
    // Watch until the version expires (then list again) or the informer stops.
    while (!stop_) {
      absl::Status watched = client_->Watch(
          options_.collection_path, options_.label_selector, version,
          options_.watch_timeout_seconds,
          [&](const WatchEvent& e) {
            const std::string rv =
                e.object.value("metadata", json::object()).value("resourceVersion", "");
            if (e.type == "ADDED" || e.type == "MODIFIED") {
              Upsert(e.object, /*only_if_newer=*/true);
            } else if (e.type == "DELETED") {
              Remove(NameOf(e.object));
            }
            if (!rv.empty()) version = rv;  // BOOKMARK: only the version moves
            return !stop_.load();
          },
          &stop_);
      if (stop_) return;
      if (IsExpired(watched)) {
        expiries_.fetch_add(1);
        break;  // list again
      }
      if (!watched.ok()) {
        if (!fail(watched, "watch")) return;
      } else {
        backoff = options_.min_backoff;
      }
    }
  }
}

}  // namespace submarine::kube
