#pragma once
// The fake API server's storage, standing in for etcd + the generic registry + the garbage
// collector: every kind's objects, one global resourceVersion counter, a bounded history of
// changes for watches, and the object semantics of kube-apiserver:
//   - create sets uid, creationTimestamp, resourceVersion, generation (kinds that have it);
//     generateName; 409 AlreadyExists; 404 when the namespace does not exist;
//   - update: 409 Conflict on a stale metadata.resourceVersion; a /status write changes only
//     status, a main write everything but status; generation bumps on changes outside metadata
//     and status; a write that changes nothing changes no resourceVersion and sends no event;
//   - delete: preconditions; finalizers and graceful pod termination keep the object (with
//     deletionTimestamp) until they are done; propagationPolicy Orphan (default for batch/v1
//     Jobs, with kube-apiserver's warning), Background (others) and Foreground, through
//     ownerReferences; deleting a namespace deletes what is in it;
//   - list: one consistent snapshot per resourceVersion, limit/continue, selectors;
//   - watch: events after a resourceVersion from the history; 410 Expired when it is gone.
// Thread-safe. Objects are immutable once stored (shared, with their serialized JSON).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/support/fake_kube/resource_catalog.h"
#include "tests/support/fake_kube/selectors.h"

namespace submarine::testing::fake_kube {

struct StoredObject {
  nlohmann::json json;  // as served, metadata.resourceVersion included
  std::string text;     // json.dump()
  int64_t resource_version = 0;
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

enum class EventType { kAdded, kModified, kDeleted };
const char* EventTypeName(EventType type);  // "ADDED", "MODIFIED", "DELETED"

struct StoreEvent {
  int64_t resource_version = 0;
  EventType type = EventType::kAdded;
  int type_index = 0;  // ResourceCatalog index
  ObjectPtr object;    // the new state; for DELETED the last state at the deletion's version
  ObjectPtr previous;  // the state before (null for ADDED)
};

struct ListOptions {
  std::string namespace_;  // "" = every namespace (always "" for cluster-scoped kinds)
  LabelSelector labels;
  FieldSelector fields;
  int64_t limit = 0;  // 0 = no limit
  std::string continue_token;
  std::string resource_version;        // "", "0" or a number
  std::string resource_version_match;  // "", "NotOlderThan", "Exact"
};

struct ListResult {
  std::vector<ObjectPtr> items;
  int64_t resource_version = 0;
  std::string continue_token;
  std::optional<int64_t> remaining_item_count;
};

struct DeleteOptions {
  std::optional<std::string> propagation_policy;  // "Foreground", "Background", "Orphan"
  std::optional<int64_t> grace_period_seconds;
  std::optional<std::string> precondition_uid;
  std::optional<std::string> precondition_resource_version;
};

struct DeleteResult {
  ObjectPtr object;  // the removed object, or the object now being deleted
  bool removed = false;
  std::vector<std::string> warnings;  // for the Warning header
};

// Who writes: a client of the API, or a controller inside the fake (the kubelet binding a pod
// to its node, a controller stripping a finalizer) that the immutability rules do not bind.
enum class Writer { kClient, kController };

class ObjectStore {
 public:
  struct Options {
    size_t watch_history = 10000;
    // Pods bound to a node and not finished terminate gracefully (a kubelet runs them).
    bool graceful_pod_deletion = false;
  };
  ObjectStore(const ResourceCatalog& catalog, Options options);

  const ResourceCatalog& catalog() const { return catalog_; }
  int64_t resource_version() const;

  absl::StatusOr<ObjectPtr> Get(const ResourceType& type, const std::string& namespace_,
                                const std::string& name) const;
  absl::StatusOr<ListResult> List(const ResourceType& type, const ListOptions& options) const;
  absl::StatusOr<ObjectPtr> Create(const ResourceType& type, const std::string& namespace_,
                                   nlohmann::json body);
  // PUT of `body` to the object (status_write: to its /status).
  absl::StatusOr<ObjectPtr> Update(const ResourceType& type, const std::string& namespace_,
                                   const std::string& name, nlohmann::json body, bool status_write,
                                   Writer writer = Writer::kClient);
  // Read-modify-write done atomically: `mutate` edits a copy of the current object (as PATCH
  // does); the result is written as Update writes it. A mutate error is returned as it is.
  absl::StatusOr<ObjectPtr> Mutate(const ResourceType& type, const std::string& namespace_,
                                   const std::string& name, bool status_write, Writer writer,
                                   const std::function<absl::Status(nlohmann::json&)>& mutate);
  absl::StatusOr<DeleteResult> Delete(const ResourceType& type, const std::string& namespace_,
                                      const std::string& name, const DeleteOptions& options);

  // Every object holding an ownerReference to `owner_uid`.
  std::vector<ObjectPtr> Dependents(const std::string& owner_uid) const;
  // Whether an object with this uid exists.
  bool Exists(const std::string& uid) const;

  // Called under the store's lock for every change, in order: must only queue work.
  void Subscribe(std::function<void(const StoreEvent&)> listener);

  // Watches. StartWatch checks `resource_version` ("" or "0": the current objects are returned
  // for synthetic ADDED events) and fixes the cursor. An expired version is a 410 Expired
  // error; `*expired_in_stream` tells whether it should rather be sent as an ERROR event inside
  // a 200 stream (the default, as the watch cache does) than as an HTTP 410 answer.
  struct WatchStart {
    std::vector<ObjectPtr> initial;
    int64_t cursor = 0;
    int64_t epoch = 0;
  };
  absl::StatusOr<WatchStart> StartWatch(const ResourceType& type, const std::string& namespace_,
                                        const std::string& resource_version,
                                        bool* expired_in_stream) const;
  enum class WaitOutcome { kEvents, kTimeout, kExpired, kStopped };
  // Waits until there are events of `type` after `*cursor` (returned in order in `events`, the
  // cursor moved to the newest version seen) or `deadline`. kExpired: the history no longer
  // reaches back to the cursor, or ExpireHistory ran since the watch started (`epoch`).
  WaitOutcome WaitForEvents(int type_index, int64_t* cursor, int64_t epoch, absl::Time deadline,
                            std::vector<StoreEvent>* events) const;
  // Whether expired watches and lists are answered with HTTP 410 (else in-stream ERROR events).
  bool expired_as_http() const;

  // Drops the whole watch history: open watches end; later watches and continue tokens from an
  // older version are 410 Expired (as an HTTP answer when `as_http_410`).
  void ExpireHistory(bool as_http_410);
  // Ends every wait (server shutdown).
  void Stop();

  // A 410 Expired "too old resource version" error.
  static absl::Status TooOldError(int64_t asked, int64_t oldest);

 private:
  struct Table {
    std::map<std::string, ObjectPtr> objects;  // key: "ns/name" or "name"
  };
  struct Ref {
    int type_index;
    std::string key;
    bool operator<(const Ref& o) const {
      return type_index != o.type_index ? type_index < o.type_index : key < o.key;
    }
  };

  std::string KeyOf(const ResourceType& type, const std::string& namespace_,
                    const std::string& name) const;
  ObjectPtr Seal(nlohmann::json object, int64_t rv) const;
  const nlohmann::json* LookupLocked(const std::string& group, const std::string& plural,
                                     const std::string& namespace_, const std::string& name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  absl::StatusOr<ObjectPtr> CreateLocked(const ResourceType& type, const std::string& namespace_,
                                         nlohmann::json body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ObjectPtr> UpdateLocked(const ResourceType& type, const std::string& key,
                                         const ObjectPtr& current, nlohmann::json body,
                                         bool status_write, Writer writer, bool require_rv)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<DeleteResult> DeleteLocked(const ResourceType& type, const std::string& key,
                                            const DeleteOptions& options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `next` (an ADDED or MODIFIED) and records the event. `previous` is taken by value:
  // callers often pass the table slot this overwrites.
  ObjectPtr CommitLocked(int type_index, const std::string& key, nlohmann::json next,
                         ObjectPtr previous) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the object for good, then lets the garbage collector act on what it owned and on
  // owners waiting for it (foreground deletion) and on a terminating namespace.
  // Returns the object as deleted (at the deletion's resourceVersion).
  ObjectPtr RemoveLocked(int type_index, const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordLocked(StoreEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexLocked(int type_index, const std::string& key, const ObjectPtr& previous,
                   const ObjectPtr& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasDependentsLocked(const std::string& uid) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FinishForegroundLocked(const std::string& owner_uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishNamespaceLocked(const std::string& namespace_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The objects of `type` in `namespace_` as they were at `rv` (the history must reach it).
  std::vector<ObjectPtr> SnapshotLocked(int type_index, const std::string& prefix, int64_t rv,
                                        const std::string& start_key) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ResourceCatalog& catalog_;
  const Options options_;
  int namespaces_index_ = -1;
  int pods_index_ = -1;

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  std::vector<Table> tables_ ABSL_GUARDED_BY(mu_);
  int64_t resource_version_ ABSL_GUARDED_BY(mu_) = 1;
  // Per kind, as the watch cache keeps them: the newest events, and the version up to which
  // events are gone.
  std::vector<std::deque<StoreEvent>> history_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> compacted_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool expired_as_http_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::unordered_map<std::string, Ref> by_uid_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::set<Ref>> dependents_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, int64_t> namespace_counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(const StoreEvent&)>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace submarine::testing::fake_kube
