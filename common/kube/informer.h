#pragma once
// A list+watch cache of one Kubernetes collection (client-go's informer, reduced): a thread
// lists the collection, then watches it from the list's resourceVersion with bookmarks, applying
// every event to an in-memory copy. When the watch ends it is renewed from the last version seen;
// when that version has expired (410, as an HTTP status or as an ERROR event inside the stream)
// the collection is listed again and the copy replaced. Errors are retried with backoff; the
// copy keeps its last state meanwhile, so a transient API failure never empties it.
//
// Readers see a consistent snapshot of each object; objects are indexed by name and, optionally,
// by the value of one label (e.g. all pods of one workload). Thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/client.h"

namespace submarine::kube {

class Informer {
 public:
  struct Change {
    bool everything = false;
    std::string name;
    std::string index_before;
    std::string index_after;
  };
  struct Options {
    std::string collection_path;  // "/apis/batch/v1/namespaces/ns/jobs"
    std::string label_selector;   // only these objects
    std::string index_label;      // objects are also found by this label's value
    int watch_timeout_seconds = 300;
    std::chrono::milliseconds min_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    // Called (outside the informer's lock) after each change is applied, with what changed:
    // the object's name and its index label's values before and after (empty when none). After
    // a (re)list, which may have changed anything, it is called once with `everything` set.
    std::function<void(const Change&)> on_change;
  };

  Informer(Client* client, Options options);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();  // ends the watch promptly and joins the thread

  // Waits until the first list has been applied; false on timeout.
  bool WaitForSync(std::chrono::milliseconds timeout);
  bool synced() const;

  // The object named `name`, as last seen.
  std::optional<nlohmann::json> Get(const std::string& name) const;
  // Objects whose `index_label` has `value`.
  std::vector<nlohmann::json> ByIndex(const std::string& value) const;
  std::vector<nlohmann::json> Snapshot() const;
  // The names of every object (cheaper than Snapshot when only names are needed).
  std::vector<std::string> Names() const;
  // Applies an object the caller just wrote (create/patch answer), so that reads that follow see
  // it without waiting for its watch event; an older resourceVersion never replaces a newer one.
  void Apply(const nlohmann::json& object);
  // Forgets an object the caller just deleted.
  void Forget(const std::string& name);

  int64_t lists() const { return lists_.load(); }        // the first list included
  int64_t expiries() const { return expiries_.load(); }  // 410s that caused a relist

 private:
  void Run();
  void Replace(std::vector<nlohmann::json> items);
  void Upsert(const nlohmann::json& object, bool only_if_newer);
  void Remove(const std::string& name);
  bool Sleep(std::chrono::milliseconds d);  // false when stopping

  Client* client_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, nlohmann::json> objects_;       // by name
  std::map<std::string, std::set<std::string>> index_;  // label value → names
  bool synced_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> lists_{0};
  std::atomic<int64_t> expiries_{0};
  std::thread thread_;
};

}  // namespace submarine::kube
