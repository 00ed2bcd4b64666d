#include "tests/support/fake_kube/api_handler.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"
#include "tests/support/fake_kube/patch.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr char kJson[] = "application/json";
constexpr char kAggregatedDiscovery[] =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

struct Query {
  std::map<std::string, std::string> values;
  bool Has(const std::string& k) const { return values.count(k) > 0; }
  std::string Get(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? "" : it->second;
  }
  bool True(const std::string& k) const {
    std::string v = absl::AsciiStrToLower(Get(k));
    return v == "1" || v == "true";
  }
};

Query ParseQuery(const std::string& query) {
  Query q;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    size_t eq = part.find('=');
    std::string key = PercentDecode(std::string(part.substr(0, eq)), true);
    std::string value =
        eq == absl::string_view::npos ? "" : PercentDecode(std::string(part.substr(eq + 1)), true);
    q.values[key] = value;
  }
  return q;
}

void RespondText(HttpResponder& r, int code, const std::string& body,
                 const HttpHeaders& headers = {}) {
  r.Respond(code, kJson, body, headers);
}

void RespondError(HttpResponder& r, const absl::Status& status, const HttpHeaders& headers = {}) {
  r.Respond(HttpCode(status), kJson, StatusObject(status).dump(), headers);
}

absl::Status PathNotFound() {
  return ApiError(404, "NotFound", "the server could not find the requested resource",
                  json::object());
}

absl::Status MethodNotAllowed() {
  return ApiError(405, "MethodNotAllowed",
                  "the server does not allow this method on the requested resource",
                  json::object());
}

// What a resource path names: a kind's collection (in a namespace or across all), an object,
// or an object's subresource.
struct Target {
  const ResourceType* type = nullptr;
  std::string namespace_;
  std::string name;
  std::string subresource;
};

absl::StatusOr<Target> ParseTarget(const ResourceCatalog& catalog, const std::string& group,
                                   const std::string& version,
                                   const std::vector<std::string>& rest) {
  Target t;
  auto find = [&](const std::string& plural) { return catalog.Find(group, version, plural); };
  if (rest.size() >= 3 && rest[0] == "namespaces" && find(rest[2]) && find(rest[2])->namespaced) {
    if (rest.size() > 5) return PathNotFound();
    t.type = find(rest[2]);
    t.namespace_ = rest[1];
    if (rest.size() > 3) t.name = rest[3];
    if (rest.size() > 4) t.subresource = rest[4];
  } else {
    if (rest.empty() || rest.size() > 3) return PathNotFound();
    t.type = find(rest[0]);
    if (!t.type) return PathNotFound();
    if (rest.size() > 1) {
      if (t.type->namespaced) return PathNotFound();
      t.name = rest[1];
    }
    if (rest.size() > 2) t.subresource = rest[2];
  }
  if (!t.subresource.empty() && !(t.subresource == "status" && t.type->has_status) &&
      !(t.subresource == "log" && t.type->has_log) &&
      !(t.subresource == "scale" && t.type->has_scale)) {
    return PathNotFound();
  }
  if (t.name.empty() && !t.subresource.empty()) return PathNotFound();
  return t;
}

absl::StatusOr<json> ParseBody(const HttpRequest& request) {
  std::string type = absl::AsciiStrToLower(request.Header("content-type"));
  if (absl::StrContains(type, "protobuf") || absl::StrContains(type, "yaml")) {
    return ApiError(415, "UnsupportedMediaType",
                    absl::StrCat("the body of the request was in an unknown format - accepted "
                                 "media types include: application/json (this fake serves JSON "
                                 "only)"));
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) {
    return BadRequestError(
        "couldn't get version/kind; json parse error: invalid JSON in the "
        "request body");
  }
  return body;
}

std::string ListBody(const ResourceType& type, const ListResult& list) {
  json meta = {{"resourceVersion", std::to_string(list.resource_version)}};
  if (!list.continue_token.empty()) meta["continue"] = list.continue_token;
  if (list.remaining_item_count) meta["remainingItemCount"] = *list.remaining_item_count;
  std::string out = absl::StrCat("{\"apiVersion\":\"", type.ApiVersion(), "\",\"kind\":\"",
                                 type.ListKind(), "\",\"metadata\":", meta.dump(), ",\"items\":[");
  size_t total = out.size() + 2;
  for (const auto& item : list.items) total += item->text.size() + 1;
  out.reserve(total);
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i) out.push_back(',');
    out.append(list.items[i]->text);
  }
  out.append("]}");
  return out;
}

absl::StatusOr<ListOptions> ListOptionsOf(const Query& q, const ResourceType& type,
                                          const std::string& namespace_) {
  ListOptions options;
  options.namespace_ = namespace_;
  auto labels = LabelSelector::Parse(q.Get("labelSelector"));
  if (!labels.ok()) return labels.status();
  options.labels = *labels;
  auto fields = FieldSelector::Parse(q.Get("fieldSelector"), type);
  if (!fields.ok()) return fields.status();
  options.fields = *fields;
  if (q.Has("limit") && !q.Get("limit").empty()) {
    if (!absl::SimpleAtoi(q.Get("limit"), &options.limit) || options.limit < 0) {
      return BadRequestError(absl::StrCat("limit: Invalid value: \"", q.Get("limit"),
                                          "\": must be a non-negative integer"));
    }
  }
  options.continue_token = q.Get("continue");
  options.resource_version = q.Get("resourceVersion");
  options.resource_version_match = q.Get("resourceVersionMatch");
  if (!options.resource_version_match.empty() && options.resource_version_match != "Exact" &&
      options.resource_version_match != "NotOlderThan") {
    return BadRequestError(absl::StrCat("resourceVersionMatch: Unsupported value: \"",
                                        options.resource_version_match,
                                        "\": supported values: \"Exact\", \"NotOlderThan\""));
  }
  return options;
}

absl::StatusOr<DeleteOptions> DeleteOptionsOf(const HttpRequest& request, const Query& q) {
  DeleteOptions options;
  json body = json::object();
  if (!absl::StripAsciiWhitespace(request.body).empty()) {
    body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return BadRequestError("couldn't decode DeleteOptions: invalid JSON");
    }
  }
  if (!Field(body, "dryRun").is_null() || q.Has("dryRun")) {
    return BadRequestError("dryRun is not supported by the fake API server");
  }
  if (body.contains("propagationPolicy") && body["propagationPolicy"].is_string()) {
    options.propagation_policy = body["propagationPolicy"].get<std::string>();
  } else if (q.Has("propagationPolicy")) {
    options.propagation_policy = q.Get("propagationPolicy");
  } else if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean()) {
    options.propagation_policy = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
  } else if (q.Has("orphanDependents")) {
    options.propagation_policy = q.True("orphanDependents") ? "Orphan" : "Background";
  }
  if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
    options.grace_period_seconds = body["gracePeriodSeconds"].get<int64_t>();
  } else if (q.Has("gracePeriodSeconds")) {
    int64_t grace;
    if (!absl::SimpleAtoi(q.Get("gracePeriodSeconds"), &grace)) {
      return BadRequestError("gracePeriodSeconds: must be an integer");
    }
    options.grace_period_seconds = grace;
  }
  const json& pre = Field(body, "preconditions");
  if (pre.is_object()) {
    if (pre.contains("uid") && pre["uid"].is_string()) {
      options.precondition_uid = pre["uid"].get<std::string>();
    }
    if (pre.contains("resourceVersion") && pre["resourceVersion"].is_string()) {
      options.precondition_resource_version = pre["resourceVersion"].get<std::string>();
    }
  }
  return options;
}

HttpHeaders WarningHeaders(const std::vector<std::string>& warnings) {
  HttpHeaders headers;
  for (const auto& w : warnings) headers.emplace_back("Warning", absl::StrCat("299 - \"", w, "\""));
  return headers;
}

// Whether a deletion answers the deleted object (pods, services, custom resources) or a
// Status (the rest), as their registries are configured.
bool ReturnsDeletedObject(const ResourceType& type) {
  return type.custom ||
         (type.group.empty() && (type.plural == "pods" || type.plural == "services"));
}

std::string SuccessStatus(const ResourceType& type, const json& object) {
  const json& meta = Field(object, "metadata");
  json details = {{"name", StringField(meta, "name")},
                  {"kind", type.plural},
                  {"uid", StringField(meta, "uid")}};
  if (!type.group.empty()) details["group"] = type.group;
  return json{{"kind", "Status"},
              {"apiVersion", "v1"},
              {"metadata", json::object()},
              {"status", "Success"},
              {"details", details}}
      .dump();
}

// A metav1.LabelSelector as labels.Selector.String() renders it: requirements sorted by key,
// "k=v", "k in (a,b)", "k notin (a,b)", "k", "!k".
std::string SelectorString(const json& selector) {
  std::vector<std::pair<std::string, std::string>> parts;
  const json& match_labels = Field(selector, "matchLabels");
  for (auto it = match_labels.begin(); match_labels.is_object() && it != match_labels.end(); ++it) {
    parts.emplace_back(it.key(),
                       absl::StrCat(it.key(), "=", it->is_string() ? it->get<std::string>() : ""));
  }
  const json& expressions = Field(selector, "matchExpressions");
  for (size_t i = 0; expressions.is_array() && i < expressions.size(); ++i) {
    const json& e = expressions[i];
    const std::string key = StringField(e, "key"), op = StringField(e, "operator");
    std::vector<std::string> values;
    const json& v = Field(e, "values");
    for (size_t j = 0; v.is_array() && j < v.size(); ++j) {
      if (v[j].is_string()) values.push_back(v[j].get<std::string>());
    }
    std::sort(values.begin(), values.end());
    std::string text = key;
    if (op == "In") text = absl::StrCat(key, " in (", absl::StrJoin(values, ","), ")");
    if (op == "NotIn") text = absl::StrCat(key, " notin (", absl::StrJoin(values, ","), ")");
    if (op == "DoesNotExist") text = "!" + key;
    parts.emplace_back(key, text);
  }
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> texts;
  for (auto& [key, text] : parts) texts.push_back(std::move(text));
  return absl::StrJoin(texts, ",");
}

// The autoscaling/v1 Scale of a StatefulSet, as its registry's scaleFromStatefulSet builds it.
json ScaleOf(const json& object) {
  const json& meta = Field(object, "metadata");
  json scale_meta = json::object();
  for (const char* f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (meta.contains(f)) scale_meta[f] = meta[f];
  }
  json spec = json::object();
  int64_t replicas = IntField(Field(object, "spec"), "replicas", 0);
  if (replicas != 0) spec["replicas"] = replicas;  // omitempty in autoscaling/v1
  json status = {{"replicas", IntField(Field(object, "status"), "replicas", 0)}};
  std::string selector = SelectorString(Field(Field(object, "spec"), "selector"));
  if (!selector.empty()) status["selector"] = selector;
  return {{"kind", "Scale"},
          {"apiVersion", "autoscaling/v1"},
          {"metadata", scale_meta},
          {"spec", spec},
          {"status", status}};
}

// The last `n` lines of `text` (a last line without a newline counts).
std::string TailLines(const std::string& text, int64_t n) {
  if (n == 0) return "";
  size_t search = !text.empty() && text.back() == '\n' ? text.size() - 1 : text.size();
  int64_t count = 0;
  while (search > 0) {
    size_t nl = text.rfind('\n', search - 1);
    if (nl == std::string::npos) break;
    if (++count == n) return text.substr(nl + 1);
    search = nl;
  }
  return text;
}

}  // namespace

ApiHandler::ApiHandler(ObjectStore& store, const Kubelet* kubelet, ApiOptions options)
    : store_(store), catalog_(store.catalog()), kubelet_(kubelet), options_(std::move(options)) {}

void ApiHandler::HoldWatchEvents(const std::string& plural, bool hold) {
  absl::MutexLock lock(&fault_mu_);
  if (hold) {
    held_watches_.insert(plural);
  } else {
    held_watches_.erase(plural);
  }
}

void ApiHandler::FailRequests(int http_status, int count, std::string path_substring) {
  absl::MutexLock lock(&fault_mu_);
  fault_status_ = http_status;
  fault_count_ = count;
  fault_substring_ = std::move(path_substring);
}

void ApiHandler::HandleHttp(const HttpRequest& request, HttpResponder& responder) {
  ++requests_served_;
  if (!options_.bearer_token.empty() &&
      request.Header("authorization") != "Bearer " + options_.bearer_token) {
    RespondError(responder, ApiError(401, "Unauthorized", "Unauthorized"));
    return;
  }
  int fault = 0;
  {
    absl::MutexLock lock(&fault_mu_);
    if (fault_count_ > 0 && absl::StrContains(request.target, fault_substring_)) {
      --fault_count_;
      fault = fault_status_;
    }
  }
  if (fault != 0) {
    std::string message;
    json details = json::object();
    HttpHeaders headers;
    switch (fault) {
      case 429:
        message = "Too many requests, please try again later.";
        details["retryAfterSeconds"] = 1;
        headers.emplace_back("Retry-After", "1");
        break;
      case 503:
        message = "the server is currently unable to handle the request";
        break;
      case 504:
        message = "Timeout: request did not complete within requested timeout";
        break;
      case 500:
        message = "Internal error occurred: injected fault";
        break;
      default:
        message = absl::StrCat("injected fault ", fault);
    }
    RespondError(responder, ApiError(fault, ReasonForCode(fault), message, details), headers);
    return;
  }
  Serve(request, responder);
}

void ApiHandler::Serve(const HttpRequest& request, HttpResponder& responder) {
  std::vector<std::string> segments;
  for (absl::string_view s : absl::StrSplit(request.path, '/', absl::SkipEmpty())) {
    segments.push_back(PercentDecode(std::string(s), false));
  }
  if (segments.empty() || segments[0] == "version" || segments[0] == "healthz" ||
      segments[0] == "livez" || segments[0] == "readyz" || segments[0] == "openapi" ||
      (segments[0] == "api" && segments.size() <= 2) ||
      (segments[0] == "apis" && segments.size() <= 3)) {
    ServeDiscovery(request, responder, segments);
    return;
  }
  std::string group, version;
  std::vector<std::string> rest;
  if (segments[0] == "api") {
    if (segments[1] != "v1") return RespondError(responder, PathNotFound());
    version = "v1";
    rest.assign(segments.begin() + 2, segments.end());
  } else if (segments[0] == "apis") {
    group = segments[1];
    version = segments[2];
    rest.assign(segments.begin() + 3, segments.end());
    if (group == MetricsServer::kGroup && metrics_ != nullptr) {
      return ServeMetrics(request, responder, version, rest);
    }
  } else {
    return RespondError(responder, PathNotFound());
  }
  auto target = ParseTarget(catalog_, group, version, rest);
  if (!target.ok()) return RespondError(responder, target.status());
  const ResourceType& type = *target->type;
  const Query q = ParseQuery(request.query);
  const bool collection = target->name.empty();
  const bool status_write = target->subresource == "status";
  const std::string& ns = target->namespace_;
  const std::string& name = target->name;

  if (target->subresource == "scale") return ServeScale(request, responder, type, ns, name);
  if (request.method == "GET") {
    if (target->subresource == "log") return ServeLog(request, responder, type, ns, name);
    if (q.True("watch")) return ServeWatch(request, responder, type, ns, name);
    if (!collection) {
      auto object = store_.Get(type, ns, name);
      if (!object.ok()) return RespondError(responder, object.status());
      return RespondText(responder, 200, (*object)->text);
    }
    auto options = ListOptionsOf(q, type, ns);
    if (!options.ok()) return RespondError(responder, options.status());
    auto list = store_.List(type, *options);
    if (!list.ok()) return RespondError(responder, list.status());
    return RespondText(responder, 200, ListBody(type, *list));
  }
  if (q.Has("dryRun")) {
    return RespondError(responder,
                        BadRequestError("dryRun is not supported by the fake API server"));
  }
  if (request.method == "POST") {
    if (!collection || (type.namespaced && ns.empty())) {
      return RespondError(responder, MethodNotAllowed());
    }
    auto body = ParseBody(request);
    if (!body.ok()) return RespondError(responder, body.status());
    auto created = store_.Create(type, ns, std::move(*body));
    if (!created.ok()) return RespondError(responder, created.status());
    return RespondText(responder, 201, (*created)->text);
  }
  if (request.method == "PUT") {
    if (collection || target->subresource == "log") {
      return RespondError(responder, MethodNotAllowed());
    }
    auto body = ParseBody(request);
    if (!body.ok()) return RespondError(responder, body.status());
    auto updated = store_.Update(type, ns, name, std::move(*body), status_write);
    if (!updated.ok()) return RespondError(responder, updated.status());
    return RespondText(responder, 200, (*updated)->text);
  }
  if (request.method == "PATCH") {
    if (collection || target->subresource == "log") {
      return RespondError(responder, MethodNotAllowed());
    }
    auto patch_type = PatchTypeOf(request.Header("content-type"), type);
    if (!patch_type.ok()) return RespondError(responder, patch_type.status());
    auto patched = store_.Mutate(type, ns, name, status_write, Writer::kClient, [&](json& obj) {
      auto result = ApplyPatch(obj, *patch_type, request.body);
      if (!result.ok()) return result.status();
      obj = std::move(*result);
      return absl::OkStatus();
    });
    if (!patched.ok()) return RespondError(responder, patched.status());
    return RespondText(responder, 200, (*patched)->text);
  }
  if (request.method == "DELETE") {
    if (!target->subresource.empty()) return RespondError(responder, MethodNotAllowed());
    auto options = DeleteOptionsOf(request, q);
    if (!options.ok()) return RespondError(responder, options.status());
    if (collection) {
      auto list_options = ListOptionsOf(q, type, ns);
      if (!list_options.ok()) return RespondError(responder, list_options.status());
      auto list = store_.List(type, *list_options);
      if (!list.ok()) return RespondError(responder, list.status());
      ListResult deleted;
      deleted.resource_version = list->resource_version;
      std::vector<std::string> warnings;
      for (const auto& item : list->items) {
        const json& meta = item->json["metadata"];
        auto result = store_.Delete(type, StringField(meta, "namespace"), StringField(meta, "name"),
                                    *options);
        if (!result.ok()) continue;
        deleted.items.push_back(result->object);
        if (warnings.empty()) warnings = result->warnings;
      }
      return RespondText(responder, 200, ListBody(type, deleted), WarningHeaders(warnings));
    }
    auto result = store_.Delete(type, ns, name, *options);
    if (!result.ok()) return RespondError(responder, result.status());
    HttpHeaders headers = WarningHeaders(result->warnings);
    if (result->removed && !ReturnsDeletedObject(type)) {
      return RespondText(responder, 200, SuccessStatus(type, result->object->json), headers);
    }
    return RespondText(responder, 200, result->object->text, headers);
  }
  RespondError(responder, MethodNotAllowed());
}

void ApiHandler::ServeDiscovery(const HttpRequest& request, HttpResponder& responder,
                                const std::vector<std::string>& segments) {
  if (request.method != "GET") return RespondError(responder, MethodNotAllowed());
  const bool aggregated = options_.aggregated_discovery &&
                          absl::StrContains(request.Header("accept"), "as=APIGroupDiscoveryList") &&
                          absl::StrContains(request.Header("accept"), "v=v2");
  if (segments.empty()) {
    json paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"};
    for (const auto& t : catalog_.types()) {
      if (t.group.empty()) continue;
      std::string g = "/apis/" + t.group, gv = g + "/" + t.version;
      if (std::find(paths.begin(), paths.end(), g) == paths.end()) paths.push_back(g);
      if (std::find(paths.begin(), paths.end(), gv) == paths.end()) paths.push_back(gv);
    }
    return RespondText(responder, 200, json{{"paths", paths}}.dump());
  }
  const std::string& first = segments[0];
  if (first == "healthz" || first == "livez" || first == "readyz") {
    return responder.Respond(200, "text/plain; charset=utf-8", "ok");
  }
  if (first == "version" && segments.size() == 1) {
    return RespondText(responder, 200,
                       json{{"major", "1"},
                            {"minor", "32"},
                            {"gitVersion", "v1.32.4"},
                            {"gitCommit", "59526cd4867447956156ae3a602fcbac10a2c335"},
                            {"gitTreeState", "clean"},
                            {"buildDate", "2025-04-22T16:02:27Z"},
                            {"goVersion", "go1.23.6"},
                            {"compiler", "gc"},
                            {"platform", "linux/amd64"}}
                           .dump());
  }
  if (first == "api") {
    if (segments.size() == 1) {
      if (aggregated) {
        return responder.Respond(200, kAggregatedDiscovery,
                                 catalog_.AggregatedDiscovery(true).dump());
      }
      return RespondText(responder, 200, catalog_.ApiVersions(server_address_).dump());
    }
    if (segments[1] == "v1") {
      return RespondText(responder, 200, catalog_.ApiResourceList("", "v1").dump());
    }
  }
  if (first == "apis") {
    if (segments.size() == 1) {
      if (aggregated) {
        return responder.Respond(200, kAggregatedDiscovery,
                                 catalog_.AggregatedDiscovery(false).dump());
      }
      return RespondText(responder, 200, catalog_.ApiGroupList().dump());
    }
    if (segments.size() == 2 && catalog_.ServesGroup(segments[1])) {
      return RespondText(responder, 200, catalog_.ApiGroup(segments[1]).dump());
    }
    if (segments.size() == 3 && catalog_.ServesGroupVersion(segments[1], segments[2])) {
      return RespondText(responder, 200, catalog_.ApiResourceList(segments[1], segments[2]).dump());
    }
  }
  RespondError(responder, PathNotFound());
}

void ApiHandler::ServeWatch(const HttpRequest& request, HttpResponder& responder,
                            const ResourceType& type, const std::string& namespace_,
                            const std::string& name) {
  const Query q = ParseQuery(request.query);
  if (q.True("sendInitialEvents")) {
    return RespondError(responder,
                        BadRequestError("sendInitialEvents is not supported by this server: "
                                        "streaming lists (WatchList) are not implemented; list, "
                                        "then watch from the list's resourceVersion"));
  }
  auto labels = LabelSelector::Parse(q.Get("labelSelector"));
  if (!labels.ok()) return RespondError(responder, labels.status());
  std::string field_text = q.Get("fieldSelector");
  if (!name.empty()) {
    field_text = absl::StrCat(field_text.empty() ? "" : field_text + ",", "metadata.name=", name);
  }
  auto fields = FieldSelector::Parse(field_text, type);
  if (!fields.ok()) return RespondError(responder, fields.status());
  absl::Time end = absl::InfiniteFuture();
  if (q.Has("timeoutSeconds")) {
    int64_t seconds;
    if (!absl::SimpleAtoi(q.Get("timeoutSeconds"), &seconds) || seconds < 0) {
      return RespondError(responder,
                          BadRequestError("timeoutSeconds: must be a non-negative integer"));
    }
    if (seconds > 0) end = absl::Now() + absl::Seconds(seconds);
  }
  const bool bookmarks = q.True("allowWatchBookmarks");
  auto matches = [&](const json& object) {
    const json& meta = Field(object, "metadata");
    if (type.namespaced && !namespace_.empty() && StringField(meta, "namespace") != namespace_) {
      return false;
    }
    return labels->Matches(Field(meta, "labels")) && fields->Matches(object);
  };
  auto line = [](const char* event_type, const std::string& object_text) {
    return absl::StrCat("{\"type\":\"", event_type, "\",\"object\":", object_text, "}\n");
  };
  auto expired_event = [](const absl::Status& status) {
    return absl::StrCat("{\"type\":\"ERROR\",\"object\":", StatusObject(status).dump(), "}\n");
  };
  auto bookmark = [&](int64_t rv) {
    json object = {
        {"kind", type.kind},
        {"apiVersion", type.ApiVersion()},
        {"metadata", {{"resourceVersion", std::to_string(rv)}, {"creationTimestamp", nullptr}}}};
    return absl::StrCat("{\"type\":\"BOOKMARK\",\"object\":", object.dump(), "}\n");
  };

  bool in_stream = false;
  auto start = store_.StartWatch(type, namespace_, q.Get("resourceVersion"), &in_stream);
  if (!start.ok()) {
    if (HttpCode(start.status()) == 410 && in_stream) {
      responder.StartStream(200, kJson);
      responder.WriteChunk(expired_event(start.status()));
      return;
    }
    return RespondError(responder, start.status());
  }
  if (!responder.StartStream(200, kJson)) return;
  std::string chunk;
  for (const auto& object : start->initial) {
    if (matches(object->json)) chunk += line("ADDED", object->text);
  }
  if (!responder.WriteChunk(chunk)) return;
  int64_t cursor = start->cursor;
  const int index = catalog_.IndexOf(type);
  absl::Time next_bookmark = absl::Now() + options_.bookmark_interval;
  while (true) {
    absl::Time wait_until =
        std::min(end, bookmarks ? next_bookmark : absl::Now() + absl::Seconds(1));
    std::vector<StoreEvent> events;
    int64_t before = cursor;
    auto outcome = store_.WaitForEvents(index, &cursor, start->epoch, wait_until, &events);
    if (outcome == ObjectStore::WaitOutcome::kStopped) return;
    if (outcome == ObjectStore::WaitOutcome::kExpired) {
      if (!store_.expired_as_http()) {
        responder.WriteChunk(
            expired_event(ObjectStore::TooOldError(before, store_.resource_version())));
      }
      return;
    }
    chunk.clear();
    for (const auto& e : events) {
      const bool now_matches = matches(e.object->json);
      const bool was_matching = e.previous && matches(e.previous->json);
      switch (e.type) {
        case EventType::kAdded:
          if (now_matches) chunk += line("ADDED", e.object->text);
          break;
        case EventType::kModified:
          if (now_matches && was_matching) {
            chunk += line("MODIFIED", e.object->text);
          } else if (now_matches) {
            chunk += line("ADDED", e.object->text);
          } else if (was_matching) {
            chunk += line("DELETED", e.object->text);
          }
          break;
        case EventType::kDeleted:
          if (now_matches) chunk += line("DELETED", e.object->text);
          break;
      }
    }
    if (!chunk.empty()) {
      // A held watch keeps its events until released.
      absl::MutexLock lock(&fault_mu_);
      auto released = [this, &type]() ABSL_SHARED_LOCKS_REQUIRED(fault_mu_) {
        return held_watches_.count(type.plural) == 0 || stopping_.load();
      };
      while (!fault_mu_.AwaitWithTimeout(absl::Condition(&released), absl::Seconds(1))) {
        if (responder.PeerClosed()) return;
      }
    }
    if (!chunk.empty() && !responder.WriteChunk(chunk)) return;
    absl::Time now = absl::Now();
    if (now >= end) {
      if (bookmarks) responder.WriteChunk(bookmark(cursor));
      return;
    }
    if (bookmarks && now >= next_bookmark) {
      if (!responder.WriteChunk(bookmark(cursor))) return;
      next_bookmark = now + options_.bookmark_interval;
    }
    if (responder.PeerClosed()) return;
  }
}

void ApiHandler::ServeMetrics(const HttpRequest& request, HttpResponder& responder,
                              const std::string& version, const std::vector<std::string>& rest) {
  if (version != MetricsServer::kVersion) return RespondError(responder, PathNotFound());
  const Query q = ParseQuery(request.query);
  // Read-only, and no watch (metrics-server's storage implements get and list only).
  if (request.method != "GET" || q.True("watch")) {
    return RespondError(responder, MethodNotAllowed());
  }
  auto selector = LabelSelector::Parse(q.Get("labelSelector"));
  if (!selector.ok()) return RespondError(responder, selector.status());
  const size_t n = rest.size();
  if (n == 1 && rest[0] == "pods") {
    return RespondText(responder, 200, metrics_->ListPods("", *selector).dump());
  }
  if ((n == 3 || n == 4) && rest[0] == "namespaces" && rest[2] == "pods") {
    if (n == 3) return RespondText(responder, 200, metrics_->ListPods(rest[1], *selector).dump());
    auto pod = metrics_->GetPod(rest[1], rest[3]);
    if (!pod.ok()) return RespondError(responder, pod.status());
    return RespondText(responder, 200, pod->dump());
  }
  if (n == 1 && rest[0] == "nodes") {
    return RespondText(responder, 200, metrics_->ListNodes(*selector).dump());
  }
  if (n == 2 && rest[0] == "nodes") {
    auto node = metrics_->GetNode(rest[1]);
    if (!node.ok()) return RespondError(responder, node.status());
    return RespondText(responder, 200, node->dump());
  }
  RespondError(responder, PathNotFound());
}

void ApiHandler::ServeScale(const HttpRequest& request, HttpResponder& responder,
                            const ResourceType& type, const std::string& namespace_,
                            const std::string& name) {
  static const ResourceType kScaleType = {
      .group = "autoscaling", .version = "v1", .plural = "scales", .kind = "Scale"};
  const Query q = ParseQuery(request.query);
  if (request.method == "GET") {
    if (q.True("watch")) return RespondError(responder, MethodNotAllowed());
    auto object = store_.Get(type, namespace_, name);
    if (!object.ok()) return RespondError(responder, object.status());
    return RespondText(responder, 200, ScaleOf((*object)->json).dump());
  }
  if (request.method != "PUT" && request.method != "PATCH") {
    return RespondError(responder, MethodNotAllowed());
  }
  if (q.Has("dryRun")) {
    return RespondError(responder,
                        BadRequestError("dryRun is not supported by the fake API server"));
  }
  json put_body;
  PatchType patch_type = PatchType::kMerge;
  if (request.method == "PUT") {
    auto body = ParseBody(request);
    if (!body.ok()) return RespondError(responder, body.status());
    put_body = std::move(*body);
  } else {
    auto parsed = PatchTypeOf(request.Header("content-type"), type);
    if (!parsed.ok()) return RespondError(responder, parsed.status());
    patch_type = *parsed;
  }
  auto written = store_.Mutate(
      type, namespace_, name, /*status_write=*/false, Writer::kClient,
      [&](json& object) -> absl::Status {
        json scale = ScaleOf(object);
        if (request.method == "PUT") {
          scale = put_body;
        } else {
          auto patched = ApplyPatch(scale, patch_type, request.body);
          if (!patched.ok()) return patched.status();
          scale = std::move(*patched);
        }
        if (!scale.is_object()) {
          return BadRequestError(
              "the body of the request must be a "
              "JSON object");
        }
        const json& meta = Field(scale, "metadata");
        const std::string scale_name = StringField(meta, "name");
        if (!scale_name.empty() && scale_name != name) {
          return BadRequestError(absl::StrCat("the name of the object (", scale_name,
                                              ") does not match the name on the URL (", name, ")"));
        }
        const json& replicas = Field(Field(scale, "spec"), "replicas");
        int64_t n = 0;
        if (replicas.is_number_integer()) {
          n = replicas.get<int64_t>();
        } else if (!replicas.is_null()) {
          return BadRequestError(
              "Scale in version \"v1\" cannot be handled as a Scale: "
              "spec.replicas must be an integer");
        }
        if (n < 0) {
          return InvalidError(kScaleType, name, "spec.replicas", "FieldValueInvalid",
                              absl::StrCat("Invalid value: ", n,
                                           ": must be greater than or "
                                           "equal to 0"));
        }
        // Validation first, then the version (as the registry).
        const std::string rv = StringField(meta, "resourceVersion");
        if (!rv.empty() && rv != StringField(object["metadata"], "resourceVersion")) {
          return ConflictError(type, name,
                               "the object has been modified; please apply your changes "
                               "to the latest version and try again");
        }
        object["spec"]["replicas"] = n;
        return absl::OkStatus();
      });
  if (!written.ok()) return RespondError(responder, written.status());
  RespondText(responder, 200, ScaleOf((*written)->json).dump());
}

void ApiHandler::ServeLog(const HttpRequest& request, HttpResponder& responder,
                          const ResourceType& type, const std::string& namespace_,
                          const std::string& name) {
  const Query q = ParseQuery(request.query);
  auto pod = store_.Get(type, namespace_, name);
  if (!pod.ok()) return RespondError(responder, pod.status());
  const json& object = (*pod)->json;
  const json& spec = Field(object, "spec");
  std::vector<std::string> names;
  for (const char* list : {"containers", "initContainers"}) {
    const json& containers = Field(spec, list);
    for (size_t i = 0; containers.is_array() && i < containers.size(); ++i) {
      names.push_back(StringField(containers[i], "name"));
    }
  }
  std::string container = q.Get("container");
  if (container.empty()) {
    const json& containers = Field(spec, "containers");
    if (containers.is_array() && containers.size() == 1) {
      container = StringField(containers[0], "name");
    } else {
      return RespondError(responder, BadRequestError(absl::StrCat(
                                         "a container name must be specified for pod ", name,
                                         ", choose one of: [", absl::StrJoin(names, " "), "]")));
    }
  }
  if (std::find(names.begin(), names.end(), container) == names.end()) {
    return RespondError(responder, BadRequestError(absl::StrCat("container ", container,
                                                                " is not valid for pod ", name)));
  }
  if (StringField(spec, "nodeName").empty()) {
    return responder.Respond(200, "text/plain", "");  // not scheduled: no location, no logs
  }
  if (!kubelet_) {
    return RespondError(
        responder, BadRequestError(absl::StrCat("container \"", container, "\" in pod \"", name,
                                                "\" is waiting to start: "
                                                "ContainerCreating")));
  }
  const bool previous = q.True("previous");
  auto source = kubelet_->Log(object, container, previous);
  if (!source.ok()) return RespondError(responder, source.status());
  int64_t limit = -1, tail = -1;
  if (q.Has("limitBytes") && (!absl::SimpleAtoi(q.Get("limitBytes"), &limit) || limit <= 0)) {
    return RespondError(responder, BadRequestError("limitBytes: must be greater than 0"));
  }
  if (q.Has("tailLines") && (!absl::SimpleAtoi(q.Get("tailLines"), &tail) || tail < 0)) {
    return RespondError(responder,
                        BadRequestError("tailLines: must be greater than or equal to 0"));
  }
  auto read_from = [&](int64_t offset) {
    std::ifstream in(source->path, std::ios::binary);
    if (!in) return std::string();
    in.seekg(offset);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  std::string content = source->path.empty() ? "" : read_from(0);
  int64_t offset = static_cast<int64_t>(content.size());
  if (tail >= 0) content = TailLines(content, tail);
  int64_t sent = 0;
  auto clip = [&](std::string& data) {
    if (limit >= 0 && sent + static_cast<int64_t>(data.size()) > limit) data.resize(limit - sent);
    sent += static_cast<int64_t>(data.size());
  };
  clip(content);
  if (!q.True("follow") || !source->running || (limit >= 0 && sent >= limit)) {
    return responder.Respond(200, "text/plain", content);
  }
  if (!responder.StartStream(200, "text/plain") || !responder.WriteChunk(content)) return;
  bool running = true;
  while (!stopping_.load() && (limit < 0 || sent < limit)) {
    std::string more = read_from(offset);
    offset += static_cast<int64_t>(more.size());
    clip(more);
    if (!more.empty() && !responder.WriteChunk(more)) return;
    if (!running && more.empty()) return;
    if (responder.PeerClosed()) return;
    auto again = kubelet_->Log(object, container, previous);
    running = again.ok() && again->path == source->path && again->running;
    if (running) absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace submarine::testing::fake_kube
