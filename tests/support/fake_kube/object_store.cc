#include "tests/support/fake_kube/object_store.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/admission.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr char kForegroundFinalizer[] = "foregroundDeletion";

std::string ObjectKey(const ResourceType& type, const json& object) {
  const json& meta = Field(object, "metadata");
  return type.namespaced ? StringField(meta, "namespace") + "/" + StringField(meta, "name")
                         : StringField(meta, "name");
}

std::vector<std::string> OwnerUids(const ObjectPtr& object) {
  std::vector<std::string> out;
  if (!object) return out;
  const json& refs = Field(Field(object->json, "metadata"), "ownerReferences");
  if (!refs.is_array()) return out;
  for (const auto& r : refs) {
    std::string uid = StringField(r, "uid");
    if (!uid.empty()) out.push_back(uid);
  }
  return out;
}

bool HasFinalizers(const json& meta) {
  const json& f = Field(meta, "finalizers");
  return f.is_array() && !f.empty();
}

bool IsDeleting(const json& meta) { return !Field(meta, "deletionTimestamp").is_null(); }

absl::Status CheckTypeMeta(const ResourceType& type, const json& body) {
  std::string api_version = StringField(body, "apiVersion");
  if (!api_version.empty() && api_version != type.ApiVersion()) {
    return BadRequestError(absl::StrCat("the API version in the data (", api_version,
                                        ") does not match the expected API version (",
                                        type.ApiVersion(), ")"));
  }
  std::string kind = StringField(body, "kind");
  if (!kind.empty() && kind != type.kind) {
    return BadRequestError(absl::StrCat("the kind in the data (", kind,
                                        ") does not match the expected kind (", type.kind, ")"));
  }
  return absl::OkStatus();
}

std::string EncodeContinue(int64_t rv, const std::string& last_key) {
  json token = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", last_key + std::string(1, '\0')}};
  return absl::WebSafeBase64Escape(token.dump());
}

absl::Status DecodeContinue(const std::string& token, int64_t* rv, std::string* start) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return BadRequestError("continue key is not valid: illegal base64 data");
  }
  json parsed = json::parse(raw, nullptr, false);
  if (!parsed.is_object() || parsed.value("v", "") != "meta.k8s.io/v1" ||
      !parsed["rv"].is_number_integer() || !parsed["start"].is_string()) {
    return BadRequestError(
        "continue key is not valid: incorrect encoded start resourceVersion "
        "(version meta.k8s.io/v1)");
  }
  *rv = parsed["rv"].get<int64_t>();
  *start = parsed["start"].get<std::string>();
  if (!start->empty() && start->back() == '\0') start->pop_back();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseResourceVersion(const std::string& text) {
  int64_t rv;
  if (!absl::SimpleAtoi(text, &rv) || rv < 0) {
    return BadRequestError(absl::StrCat("resourceVersion: Invalid value: \"", text,
                                        "\": must be a non-negative integer"));
  }
  return rv;
}

}  // namespace

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
  }
  return "";
}

ObjectStore::ObjectStore(const ResourceCatalog& catalog, Options options)
    : catalog_(catalog), options_(options) {
  const auto& types = catalog.types();
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i].group.empty() && types[i].plural == "namespaces") namespaces_index_ = i;
    if (types[i].group.empty() && types[i].plural == "pods") pods_index_ = i;
  }
  absl::MutexLock lock(&mu_);
  tables_.resize(types.size());
  history_.resize(types.size());
  compacted_.resize(types.size(), 0);
}

int64_t ObjectStore::resource_version() const {
  absl::ReaderMutexLock lock(&mu_);
  return resource_version_;
}

std::string ObjectStore::KeyOf(const ResourceType& type, const std::string& namespace_,
                               const std::string& name) const {
  return type.namespaced ? namespace_ + "/" + name : name;
}

ObjectPtr ObjectStore::Seal(json object, int64_t rv) const {
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  auto sealed = std::make_shared<StoredObject>();
  sealed->json = std::move(object);
  sealed->text = sealed->json.dump();
  sealed->resource_version = rv;
  return sealed;
}

absl::Status ObjectStore::TooOldError(int64_t asked, int64_t oldest) {
  return ApiError(410, "Expired",
                  absl::StrCat("too old resource version: ", asked, " (", oldest, ")"));
}

absl::StatusOr<ObjectPtr> ObjectStore::Get(const ResourceType& type, const std::string& namespace_,
                                           const std::string& name) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto& table = tables_[catalog_.IndexOf(type)];
  auto it = table.objects.find(KeyOf(type, namespace_, name));
  if (it == table.objects.end()) return NotFoundError(type, name);
  return it->second;
}

const json* ObjectStore::LookupLocked(const std::string& group, const std::string& plural,
                                      const std::string& namespace_,
                                      const std::string& name) const {
  for (const auto& type : catalog_.types()) {
    if (type.group != group || type.plural != plural) continue;
    const auto& table = tables_[catalog_.IndexOf(type)];
    auto it = table.objects.find(KeyOf(type, namespace_, name));
    return it == table.objects.end() ? nullptr : &it->second->json;
  }
  return nullptr;
}

std::vector<ObjectPtr> ObjectStore::SnapshotLocked(int type_index, const std::string& prefix,
                                                   int64_t rv, const std::string& start_key) const {
  const ResourceType& type = catalog_.types()[type_index];
  // The state at `rv` of every key changed since: the `previous` of its oldest later event.
  std::map<std::string, ObjectPtr> overlay;
  const auto& history = history_[type_index];
  for (auto it = history.rbegin(); it != history.rend() && it->resource_version > rv; ++it) {
    overlay[ObjectKey(type, it->object->json)] =
        it->type == EventType::kAdded ? nullptr : it->previous;
  }
  const auto& objects = tables_[type_index].objects;
  auto lower = [&](const auto& map) {
    return start_key.empty() ? map.lower_bound(prefix) : map.upper_bound(start_key);
  };
  auto a = lower(objects);
  auto b = lower(overlay);
  std::vector<ObjectPtr> out;
  auto in_prefix = [&](const std::string& key) { return absl::StartsWith(key, prefix); };
  while (true) {
    bool a_ok = a != objects.end() && in_prefix(a->first);
    bool b_ok = b != overlay.end() && in_prefix(b->first);
    if (!a_ok && !b_ok) break;
    if (b_ok && (!a_ok || b->first <= a->first)) {
      if (a_ok && a->first == b->first) ++a;
      if (b->second) out.push_back(b->second);
      ++b;
    } else {
      out.push_back(a->second);
      ++a;
    }
  }
  return out;
}

absl::StatusOr<ListResult> ObjectStore::List(const ResourceType& type,
                                             const ListOptions& options) const {
  absl::ReaderMutexLock lock(&mu_);
  const int index = catalog_.IndexOf(type);
  const std::string prefix =
      type.namespaced && !options.namespace_.empty() ? options.namespace_ + "/" : "";
  int64_t snapshot = resource_version_;
  std::string start;
  if (!options.continue_token.empty()) {
    if (auto s = DecodeContinue(options.continue_token, &snapshot, &start); !s.ok()) return s;
    if (!absl::StartsWith(start, prefix)) {
      return BadRequestError(
          "continue key is not valid: key provided is not prefixed by the "
          "requested namespace");
    }
    if (snapshot < compacted_[index]) {
      return ApiError(410, "Expired",
                      "The provided continue parameter is too old to display a consistent list "
                      "result. You can start a new list without the continue parameter, or use "
                      "the continue token in this response to retrieve the remainder of the "
                      "results. Continuing with the provided token results in an inconsistent "
                      "list - objects that were created, modified, or deleted between the time "
                      "the first chunk was returned and now may show up in the list.");
    }
  } else if (!options.resource_version.empty() && options.resource_version != "0") {
    auto rv = ParseResourceVersion(options.resource_version);
    if (!rv.ok()) return rv.status();
    bool exact = options.resource_version_match == "Exact" ||
                 (options.resource_version_match.empty() && options.limit > 0);
    if (exact) {
      if (*rv < compacted_[index]) return TooOldError(*rv, compacted_[index]);
      snapshot = std::min(*rv, resource_version_);
    }
  }
  std::vector<ObjectPtr> candidates;
  if (snapshot == resource_version_) {
    const auto& objects = tables_[index].objects;
    auto it = start.empty() ? objects.lower_bound(prefix) : objects.upper_bound(start);
    for (; it != objects.end() && absl::StartsWith(it->first, prefix); ++it) {
      candidates.push_back(it->second);
    }
  } else {
    candidates = SnapshotLocked(index, prefix, snapshot, start);
  }
  ListResult result;
  result.resource_version = snapshot;
  bool filtered = !options.labels.empty() || !options.fields.empty();
  size_t i = 0;
  for (; i < candidates.size(); ++i) {
    const auto& object = candidates[i];
    if (filtered) {
      const json& meta = Field(object->json, "metadata");
      if (!options.labels.Matches(Field(meta, "labels"))) continue;
      if (!options.fields.Matches(object->json)) continue;
    }
    if (options.limit > 0 && static_cast<int64_t>(result.items.size()) >= options.limit) break;
    result.items.push_back(object);
  }
  if (i < candidates.size()) {
    // More matching objects may follow (the next one did not fit).
    result.continue_token = EncodeContinue(snapshot, ObjectKey(type, result.items.back()->json));
    if (!filtered) result.remaining_item_count = static_cast<int64_t>(candidates.size() - i);
  }
  return result;
}

absl::StatusOr<ObjectPtr> ObjectStore::Create(const ResourceType& type,
                                              const std::string& namespace_, json body) {
  absl::MutexLock lock(&mu_);
  return CreateLocked(type, namespace_, std::move(body));
}

absl::StatusOr<ObjectPtr> ObjectStore::CreateLocked(const ResourceType& type,
                                                    const std::string& namespace_, json body) {
  if (!body.is_object()) return BadRequestError("the body of the request must be a JSON object");
  if (auto s = CheckTypeMeta(type, body); !s.ok()) return s;
  json meta = Field(body, "metadata");
  if (!meta.is_object()) meta = json::object();
  if (type.namespaced) {
    std::string body_ns = StringField(meta, "namespace");
    if (!body_ns.empty() && body_ns != namespace_) {
      return BadRequestError(
          "the namespace of the provided object does not match the namespace "
          "sent on the request");
    }
    meta["namespace"] = namespace_;
  } else {
    meta.erase("namespace");
  }
  const int index = catalog_.IndexOf(type);
  auto& table = tables_[index];
  std::string name = StringField(meta, "name");
  if (name.empty()) {
    std::string base = StringField(meta, "generateName");
    if (base.empty()) {
      return InvalidErrors(type, "",
                           {{"metadata.name", "FieldValueRequired",
                             "Required value: name or generateName is required"}});
    }
    if (base.size() > 58) base.resize(58);
    for (int attempt = 0; attempt < 8; ++attempt) {
      name = base + RandomSuffix(5);
      if (!table.objects.count(KeyOf(type, namespace_, name))) break;
    }
  }
  if (std::string problem = NameProblem(type, name); !problem.empty()) {
    return InvalidErrors(type, name,
                         {{"metadata.name", "FieldValueInvalid",
                           absl::StrCat("Invalid value: ", json(name).dump(), ": ", problem)}});
  }
  if (type.namespaced) {
    auto ns = tables_[namespaces_index_].objects.find(namespace_);
    if (ns == tables_[namespaces_index_].objects.end()) {
      return ApiError(404, "NotFound", absl::StrCat("namespaces \"", namespace_, "\" not found"),
                      {{"name", namespace_}, {"kind", "namespaces"}});
    }
    if (IsDeleting(Field(ns->second->json, "metadata"))) {
      return ApiError(
          403, "Forbidden",
          absl::StrCat(type.GroupResource(), " \"", name,
                       "\" is forbidden: unable to create new content in namespace ", namespace_,
                       " because it is being terminated"),
          {{"name", name},
           {"kind", type.plural},
           {"causes",
            {{{"reason", "NamespaceTerminating"},
              {"message", absl::StrCat("namespace ", namespace_, " is being terminated")},
              {"field", "metadata.namespace"}}}}});
    }
  }
  std::string key = KeyOf(type, namespace_, name);
  if (table.objects.count(key)) return AlreadyExistsError(type, name);
  meta["name"] = name;
  meta["uid"] = NewUid();
  meta["creationTimestamp"] = NowRfc3339();
  for (const char* f : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "selfLink", "managedFields"}) {
    meta.erase(f);
  }
  if (type.has_generation) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  body["metadata"] = std::move(meta);
  body["apiVersion"] = type.ApiVersion();
  body["kind"] = type.kind;
  ObjectLookup lookup = [this](const std::string& group, const std::string& plural,
                               const std::string& ns,
                               const std::string& n) { return LookupLocked(group, plural, ns, n); };
  if (auto s = AdmitCreate(type, body, lookup); !s.ok()) return s;
  ObjectPtr created = CommitLocked(index, key, std::move(body), nullptr);
  // The garbage collector deletes a dependent whose owners (of kinds served here) are all gone
  // already, e.g. a pod a controller created for a Job deleted meanwhile.
  const json& refs = Field(created->json["metadata"], "ownerReferences");
  if (refs.is_array() && !refs.empty()) {
    bool dangling = std::all_of(refs.begin(), refs.end(), [&](const json& r) {
      return catalog_.FindKind(StringField(r, "apiVersion"), StringField(r, "kind")) &&
             !by_uid_.count(StringField(r, "uid"));
    });
    if (dangling) {
      (void)DeleteLocked(type, key, DeleteOptions{.propagation_policy = "Background"});
    }
  }
  return created;
}

absl::StatusOr<ObjectPtr> ObjectStore::Update(const ResourceType& type,
                                              const std::string& namespace_,
                                              const std::string& name, json body, bool status_write,
                                              Writer writer) {
  absl::MutexLock lock(&mu_);
  const int index = catalog_.IndexOf(type);
  std::string key = KeyOf(type, namespace_, name);
  auto it = tables_[index].objects.find(key);
  if (it == tables_[index].objects.end()) return NotFoundError(type, name);
  ObjectPtr current = it->second;
  return UpdateLocked(type, key, current, std::move(body), status_write, writer, true);
}

absl::StatusOr<ObjectPtr> ObjectStore::Mutate(const ResourceType& type,
                                              const std::string& namespace_,
                                              const std::string& name, bool status_write,
                                              Writer writer,
                                              const std::function<absl::Status(json&)>& mutate) {
  absl::MutexLock lock(&mu_);
  const int index = catalog_.IndexOf(type);
  std::string key = KeyOf(type, namespace_, name);
  auto it = tables_[index].objects.find(key);
  if (it == tables_[index].objects.end()) return NotFoundError(type, name);
  ObjectPtr current = it->second;
  json next = current->json;
  if (auto s = mutate(next); !s.ok()) return s;
  return UpdateLocked(type, key, current, std::move(next), status_write, writer, false);
}

absl::StatusOr<ObjectPtr> ObjectStore::UpdateLocked(const ResourceType& type,
                                                    const std::string& key,
                                                    const ObjectPtr& current, json body,
                                                    bool status_write, Writer writer,
                                                    bool require_rv) {
  if (!body.is_object()) return BadRequestError("the body of the request must be a JSON object");
  if (auto s = CheckTypeMeta(type, body); !s.ok()) return s;
  const json& cur = current->json;
  const json& cur_meta = cur["metadata"];
  const std::string name = cur_meta["name"].get<std::string>();
  const json& body_meta = Field(body, "metadata");
  std::string body_name = StringField(body_meta, "name");
  if (!body_name.empty() && body_name != name) {
    return BadRequestError(absl::StrCat("the name of the object (", body_name,
                                        ") does not match the name on the URL (", name, ")"));
  }
  std::string body_ns = StringField(body_meta, "namespace");
  if (type.namespaced && !body_ns.empty() && body_ns != StringField(cur_meta, "namespace")) {
    return BadRequestError(
        "the namespace of the provided object does not match the namespace "
        "sent on the request");
  }
  std::string body_rv = StringField(body_meta, "resourceVersion");
  if (!body_rv.empty()) {
    if (body_rv != StringField(cur_meta, "resourceVersion")) {
      return ConflictError(type, name,
                           "the object has been modified; please apply your changes to the latest "
                           "version and try again");
    }
  } else if (require_rv && type.custom && writer == Writer::kClient) {
    return InvalidErrors(type, name,
                         {{"metadata.resourceVersion", "FieldValueInvalid",
                           "Invalid value: 0x0: must be specified for an update"}});
  }
  json next;
  if (status_write) {
    next = cur;
    if (body.contains("status")) {
      next["status"] = body["status"];
    } else {
      next.erase("status");
    }
  } else {
    next = std::move(body);
    json meta = Field(next, "metadata");
    if (!meta.is_object()) meta = json::object();
    for (const char* f : {"name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"}) {
      if (cur_meta.contains(f)) {
        meta[f] = cur_meta[f];
      } else {
        meta.erase(f);
      }
    }
    meta.erase("selfLink");
    next["metadata"] = std::move(meta);
    if (type.has_status) {
      if (cur.contains("status")) {
        next["status"] = cur["status"];
      } else {
        next.erase("status");
      }
    }
  }
  next["apiVersion"] = type.ApiVersion();
  next["kind"] = type.kind;
  if (auto s = AdmitUpdate(type, cur, next, status_write, writer == Writer::kController); !s.ok()) {
    return s;
  }
  if (type.has_generation) {
    json a = cur, b = next;
    for (json* j : {&a, &b}) {
      j->erase("metadata");
      j->erase("status");
    }
    if (a != b) next["metadata"]["generation"] = IntField(cur_meta, "generation", 1) + 1;
  }
  next["metadata"]["resourceVersion"] = cur_meta["resourceVersion"];
  if (next == cur) return current;  // no-op: no new resourceVersion, no event
  const int index = catalog_.IndexOf(type);
  ObjectPtr written = CommitLocked(index, key, std::move(next), current);
  const json& meta = written->json["metadata"];
  if (IsDeleting(meta) && !HasFinalizers(meta) &&
      IntField(meta, "deletionGracePeriodSeconds", 0) == 0) {
    return RemoveLocked(index, key);
  }
  return written;
}

absl::StatusOr<DeleteResult> ObjectStore::Delete(const ResourceType& type,
                                                 const std::string& namespace_,
                                                 const std::string& name,
                                                 const DeleteOptions& options) {
  absl::MutexLock lock(&mu_);
  const int index = catalog_.IndexOf(type);
  std::string key = KeyOf(type, namespace_, name);
  if (!tables_[index].objects.count(key)) return NotFoundError(type, name);
  return DeleteLocked(type, key, options);
}

absl::StatusOr<DeleteResult> ObjectStore::DeleteLocked(const ResourceType& type,
                                                       const std::string& key,
                                                       const DeleteOptions& options) {
  const int index = catalog_.IndexOf(type);
  auto& objects = tables_[index].objects;
  ObjectPtr current = objects.at(key);
  const json& meta = current->json["metadata"];
  const std::string name = meta["name"].get<std::string>();
  const std::string uid = meta["uid"].get<std::string>();
  if (options.precondition_uid && *options.precondition_uid != uid) {
    return ConflictError(type, name,
                         absl::StrCat("Precondition failed: UID in precondition: ",
                                      *options.precondition_uid, ", UID in object meta: ", uid));
  }
  if (options.precondition_resource_version &&
      *options.precondition_resource_version != StringField(meta, "resourceVersion")) {
    return ConflictError(
        type, name,
        absl::StrCat("Precondition failed: ResourceVersion in precondition: ",
                     *options.precondition_resource_version,
                     ", ResourceVersion in object meta: ", StringField(meta, "resourceVersion")));
  }
  DeleteResult result;
  std::string policy;
  if (options.propagation_policy) {
    policy = *options.propagation_policy;
    if (policy != "Foreground" && policy != "Background" && policy != "Orphan") {
      return ApiError(422, "Invalid",
                      absl::StrCat("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: "
                                   "Unsupported value: \"",
                                   policy,
                                   "\": supported values: \"Foreground\", \"Background\", "
                                   "\"Orphan\""));
    }
  } else if (type.group == "batch" && type.plural == "jobs") {
    // batch/v1 Jobs orphan their pods unless told otherwise (kube-apiserver warns about it).
    policy = "Orphan";
    result.warnings.push_back(
        "child pods are preserved by default when jobs are deleted; set "
        "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
        "suppress this warning");
  } else {
    policy = "Background";
  }
  if (options.grace_period_seconds && *options.grace_period_seconds < 0) {
    return ApiError(422, "Invalid",
                    "DeleteOptions.meta.k8s.io \"\" is invalid: gracePeriodSeconds: Invalid "
                    "value: must be greater than or equal to 0");
  }
  const bool is_pod = index == pods_index_;
  const auto now = std::chrono::system_clock::now();

  if (IsDeleting(meta)) {
    // Already being deleted: a shorter grace period for a terminating pod still counts.
    int64_t current_grace = IntField(meta, "deletionGracePeriodSeconds", 0);
    if (is_pod && options.grace_period_seconds && *options.grace_period_seconds < current_grace) {
      json next = current->json;
      next["metadata"]["deletionGracePeriodSeconds"] = *options.grace_period_seconds;
      next["metadata"]["deletionTimestamp"] =
          Rfc3339(now + std::chrono::seconds(*options.grace_period_seconds));
      ObjectPtr written = CommitLocked(index, key, std::move(next), current);
      if (*options.grace_period_seconds == 0 && !HasFinalizers(written->json["metadata"])) {
        result.object = RemoveLocked(index, key);
        result.removed = true;
        return result;
      }
      result.object = written;
      return result;
    }
    result.object = current;
    return result;
  }

  if (index == namespaces_index_) {
    json next = current->json;
    next["metadata"]["deletionTimestamp"] = Rfc3339(now);
    next["metadata"]["deletionGracePeriodSeconds"] = 0;
    next["status"]["phase"] = "Terminating";
    result.object = CommitLocked(index, key, std::move(next), current);
    for (size_t t = 0; t < tables_.size(); ++t) {
      const ResourceType& content_type = catalog_.types()[t];
      if (!content_type.namespaced) continue;
      std::vector<std::string> keys;
      const std::string prefix = name + "/";
      for (auto it = tables_[t].objects.lower_bound(prefix);
           it != tables_[t].objects.end() && absl::StartsWith(it->first, prefix); ++it) {
        keys.push_back(it->first);
      }
      for (const auto& k : keys) {
        if (tables_[t].objects.count(k)) {
          (void)DeleteLocked(content_type, k, DeleteOptions{.propagation_policy = "Background"});
        }
      }
    }
    FinishNamespaceLocked(name);
    if (!objects.count(key)) result.removed = true;
    return result;
  }

  if (policy == "Orphan" && dependents_.count(uid)) {
    std::set<Ref> refs = dependents_[uid];
    for (const auto& ref : refs) {
      auto dep = tables_[ref.type_index].objects.find(ref.key);
      if (dep == tables_[ref.type_index].objects.end()) continue;
      json next = dep->second->json;
      json kept = json::array();
      for (const auto& r : next["metadata"]["ownerReferences"]) {
        if (StringField(r, "uid") != uid) kept.push_back(r);
      }
      if (kept.empty()) {
        next["metadata"].erase("ownerReferences");
      } else {
        next["metadata"]["ownerReferences"] = kept;
      }
      CommitLocked(ref.type_index, ref.key, std::move(next), dep->second);
    }
  }

  bool graceful = false;
  int64_t grace = 0;
  if (is_pod && options_.graceful_pod_deletion) {
    const json& spec = Field(current->json, "spec");
    std::string phase = StringField(Field(current->json, "status"), "phase");
    if (!StringField(spec, "nodeName").empty() && phase != "Succeeded" && phase != "Failed") {
      grace = options.grace_period_seconds ? *options.grace_period_seconds
                                           : IntField(spec, "terminationGracePeriodSeconds", 30);
      graceful = grace > 0;
    }
  }
  json finalizers = Field(meta, "finalizers");
  if (!finalizers.is_array()) finalizers = json::array();
  const bool foreground = policy == "Foreground" && HasDependentsLocked(uid);
  if (foreground &&
      std::find(finalizers.begin(), finalizers.end(), kForegroundFinalizer) == finalizers.end()) {
    finalizers.push_back(kForegroundFinalizer);
  }
  if (!graceful && finalizers.empty()) {
    result.object = RemoveLocked(index, key);
    result.removed = true;
    return result;
  }
  json next = current->json;
  next["metadata"]["deletionTimestamp"] = Rfc3339(now + std::chrono::seconds(grace));
  next["metadata"]["deletionGracePeriodSeconds"] = grace;
  if (!finalizers.empty()) next["metadata"]["finalizers"] = finalizers;
  result.object = CommitLocked(index, key, std::move(next), current);
  if (foreground) {
    std::set<Ref> refs = dependents_[uid];
    for (const auto& ref : refs) {
      if (!tables_[ref.type_index].objects.count(ref.key)) continue;
      (void)DeleteLocked(catalog_.types()[ref.type_index], ref.key,
                         DeleteOptions{.propagation_policy = "Foreground"});
    }
    auto still = objects.find(key);
    if (still == objects.end()) {
      result.removed = true;
    } else {
      result.object = still->second;
    }
  }
  return result;
}

ObjectPtr ObjectStore::CommitLocked(int type_index, const std::string& key, json next,
                                    ObjectPtr previous) {
  const int64_t rv = ++resource_version_;
  ObjectPtr written = Seal(std::move(next), rv);
  tables_[type_index].objects[key] = written;
  IndexLocked(type_index, key, previous, written);
  RecordLocked(
      {rv, previous ? EventType::kModified : EventType::kAdded, type_index, written, previous});
  return written;
}

ObjectPtr ObjectStore::RemoveLocked(int type_index, const std::string& key) {
  auto& objects = tables_[type_index].objects;
  auto it = objects.find(key);
  if (it == objects.end()) return nullptr;
  ObjectPtr last = it->second;
  objects.erase(it);
  const int64_t rv = ++resource_version_;
  ObjectPtr deleted = Seal(last->json, rv);
  IndexLocked(type_index, key, last, nullptr);
  RecordLocked({rv, EventType::kDeleted, type_index, deleted, last});

  const json& meta = last->json["metadata"];
  const std::string uid = StringField(meta, "uid");
  // Background garbage collection: what this object owned goes unless another owner remains.
  if (auto deps = dependents_.find(uid); deps != dependents_.end()) {
    std::set<Ref> refs = deps->second;
    for (const auto& ref : refs) {
      auto dep = tables_[ref.type_index].objects.find(ref.key);
      if (dep == tables_[ref.type_index].objects.end()) continue;
      auto owners = OwnerUids(dep->second);
      bool other_owner = std::any_of(owners.begin(), owners.end(), [&](const std::string& o) {
        return o != uid && by_uid_.count(o);
      });
      if (other_owner) continue;
      (void)DeleteLocked(catalog_.types()[ref.type_index], ref.key,
                         DeleteOptions{.propagation_policy = "Background"});
    }
  }
  for (const auto& owner : OwnerUids(last)) FinishForegroundLocked(owner);
  if (catalog_.types()[type_index].namespaced) {
    FinishNamespaceLocked(StringField(meta, "namespace"));
  }
  return deleted;
}

void ObjectStore::RecordLocked(StoreEvent event) {
  auto& history = history_[event.type_index];
  history.push_back(event);
  while (history.size() > options_.watch_history) {
    compacted_[event.type_index] = history.front().resource_version;
    history.pop_front();
  }
  for (const auto& listener : listeners_) listener(event);
  changed_.SignalAll();
}

void ObjectStore::IndexLocked(int type_index, const std::string& key, const ObjectPtr& previous,
                              const ObjectPtr& next) {
  Ref ref{type_index, key};
  if (!previous && next) {
    by_uid_[StringField(next->json["metadata"], "uid")] = ref;
    if (catalog_.types()[type_index].namespaced) {
      ++namespace_counts_[StringField(next->json["metadata"], "namespace")];
    }
  } else if (previous && !next) {
    by_uid_.erase(StringField(previous->json["metadata"], "uid"));
    if (catalog_.types()[type_index].namespaced) {
      --namespace_counts_[StringField(previous->json["metadata"], "namespace")];
    }
  }
  auto before = OwnerUids(previous);
  auto after = OwnerUids(next);
  for (const auto& o : before) {
    if (std::find(after.begin(), after.end(), o) != after.end()) continue;
    auto it = dependents_.find(o);
    if (it == dependents_.end()) continue;
    it->second.erase(ref);
    if (it->second.empty()) dependents_.erase(it);
  }
  for (const auto& o : after) dependents_[o].insert(ref);
}

bool ObjectStore::HasDependentsLocked(const std::string& uid) const {
  auto it = dependents_.find(uid);
  return it != dependents_.end() && !it->second.empty();
}

void ObjectStore::FinishForegroundLocked(const std::string& owner_uid) {
  auto ref = by_uid_.find(owner_uid);
  if (ref == by_uid_.end()) return;
  Ref owner_ref = ref->second;
  auto& objects = tables_[owner_ref.type_index].objects;
  auto it = objects.find(owner_ref.key);
  if (it == objects.end()) return;
  ObjectPtr owner = it->second;
  const json& meta = owner->json["metadata"];
  const json& finalizers = Field(meta, "finalizers");
  if (!IsDeleting(meta) || !finalizers.is_array() ||
      std::find(finalizers.begin(), finalizers.end(), kForegroundFinalizer) == finalizers.end()) {
    return;
  }
  if (HasDependentsLocked(owner_uid)) return;
  json next = owner->json;
  json kept = json::array();
  for (const auto& f : finalizers) {
    if (f != kForegroundFinalizer) kept.push_back(f);
  }
  if (kept.empty()) {
    next["metadata"].erase("finalizers");
  } else {
    next["metadata"]["finalizers"] = kept;
  }
  ObjectPtr written = CommitLocked(owner_ref.type_index, owner_ref.key, std::move(next), owner);
  if (!HasFinalizers(written->json["metadata"]) &&
      IntField(written->json["metadata"], "deletionGracePeriodSeconds", 0) == 0) {
    RemoveLocked(owner_ref.type_index, owner_ref.key);
  }
}

void ObjectStore::FinishNamespaceLocked(const std::string& namespace_) {
  auto& namespaces = tables_[namespaces_index_].objects;
  auto it = namespaces.find(namespace_);
  if (it == namespaces.end() || !IsDeleting(it->second->json["metadata"])) return;
  auto count = namespace_counts_.find(namespace_);
  if (count != namespace_counts_.end() && count->second > 0) return;
  namespace_counts_.erase(namespace_);
  RemoveLocked(namespaces_index_, namespace_);
}

std::vector<ObjectPtr> ObjectStore::Dependents(const std::string& owner_uid) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<ObjectPtr> out;
  auto it = dependents_.find(owner_uid);
  if (it == dependents_.end()) return out;
  for (const auto& ref : it->second) {
    auto obj = tables_[ref.type_index].objects.find(ref.key);
    if (obj != tables_[ref.type_index].objects.end()) out.push_back(obj->second);
  }
  return out;
}

bool ObjectStore::Exists(const std::string& uid) const {
  absl::ReaderMutexLock lock(&mu_);
  return by_uid_.count(uid) > 0;
}

void ObjectStore::Subscribe(std::function<void(const StoreEvent&)> listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

absl::StatusOr<ObjectStore::WatchStart> ObjectStore::StartWatch(const ResourceType& type,
                                                                const std::string& namespace_,
                                                                const std::string& resource_version,
                                                                bool* expired_in_stream) const {
  absl::ReaderMutexLock lock(&mu_);
  const int index = catalog_.IndexOf(type);
  WatchStart start;
  start.epoch = epoch_;
  if (resource_version.empty() || resource_version == "0") {
    const std::string prefix = type.namespaced && !namespace_.empty() ? namespace_ + "/" : "";
    const auto& objects = tables_[index].objects;
    for (auto it = objects.lower_bound(prefix);
         it != objects.end() && absl::StartsWith(it->first, prefix); ++it) {
      start.initial.push_back(it->second);
    }
    start.cursor = resource_version_;
    return start;
  }
  auto rv = ParseResourceVersion(resource_version);
  if (!rv.ok()) return rv.status();
  if (*rv < compacted_[index]) {
    *expired_in_stream = !expired_as_http_;
    return TooOldError(*rv, compacted_[index]);
  }
  start.cursor = *rv;
  return start;
}

ObjectStore::WaitOutcome ObjectStore::WaitForEvents(int type_index, int64_t* cursor, int64_t epoch,
                                                    absl::Time deadline,
                                                    std::vector<StoreEvent>* events) const {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (stopped_) return WaitOutcome::kStopped;
    if (epoch != epoch_ || *cursor < compacted_[type_index]) return WaitOutcome::kExpired;
    const auto& history = history_[type_index];
    auto first = std::partition_point(history.begin(), history.end(), [&](const StoreEvent& e) {
      return e.resource_version <= *cursor;
    });
    events->insert(events->end(), first, history.end());
    *cursor = std::max(*cursor, resource_version_);
    if (!events->empty()) return WaitOutcome::kEvents;
    if (absl::Now() >= deadline) return WaitOutcome::kTimeout;
    changed_.WaitWithDeadline(&mu_, deadline);
  }
}

bool ObjectStore::expired_as_http() const {
  absl::ReaderMutexLock lock(&mu_);
  return expired_as_http_;
}

void ObjectStore::ExpireHistory(bool as_http_410) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < history_.size(); ++i) {
    history_[i].clear();
    compacted_[i] = resource_version_;
  }
  ++epoch_;
  expired_as_http_ = as_http_410;
  changed_.SignalAll();
}

void ObjectStore::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  changed_.SignalAll();
}

}  // namespace submarine::testing::fake_kube
