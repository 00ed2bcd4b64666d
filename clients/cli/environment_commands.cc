#include "clients/cli/environment_commands.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

// Sends a request and returns its JSON body, or the server's error.
absl::StatusOr<nlohmann::json> Call(const EnvironmentCommandContext& ctx, const std::string& method,
                                    const std::string& path, const nlohmann::json& body = nullptr) {
  return ctx.client->Call(method, path, body);
}

std::string Collection(const std::string& project) {
  return absl::StrCat("/v1/projects/", project, "/environments");
}

}  // namespace

std::string EnvironmentName(const std::string& project, const std::string& name_or_id) {
  if (name_or_id.rfind("projects/", 0) == 0) return name_or_id;
  return absl::StrCat("projects/", project, "/environments/", name_or_id);
}

absl::StatusOr<EnvironmentCreation> ParseEnvironmentFile(const std::string& text,
                                                         const std::string& id_flag) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string json_text, config::YamlToJson(text));
  nlohmann::json body = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return InvalidField("file", "an environment file must hold a mapping (YAML or JSON object)");
  }
  EnvironmentCreation creation;
  creation.environment_id = id_flag;
  if (body.contains("name")) {
    if (creation.environment_id.empty() && body["name"].is_string()) {
      std::string name = body["name"].get<std::string>();
      creation.environment_id = name.substr(name.rfind('/') + 1);
    }
    body.erase("name");
  }
  if (creation.environment_id.empty()) {
    return InvalidField("id", "give the environment id with --id or as `name` in the file");
  }
  creation.body = std::move(body);
  return creation;
}

absl::Status ListEnvironments(const EnvironmentCommandContext& ctx, const std::string& filter,
                              const std::string& order_by, int page_size) {
  std::vector<nlohmann::json> environments;
  std::string page_token;
  do {
    std::string query;
    auto add = [&query](const std::string& key, const std::string& value) {
      absl::StrAppend(&query, query.empty() ? "?" : "&", key, "=", UrlEncode(value));
    };
    if (page_size > 0) add("pageSize", std::to_string(page_size));
    if (!page_token.empty()) add("pageToken", page_token);
    if (!filter.empty()) add("filter", filter);
    if (!order_by.empty()) add("orderBy", order_by);
    SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json page,
                               Call(ctx, "GET", Collection(ctx.project) + query));
    if (page.contains("environments") && page["environments"].is_array()) {
      for (auto& e : page["environments"]) environments.push_back(std::move(e));
    }
    page_token = page.value("nextPageToken", "");
  } while (!page_token.empty());
  *ctx.out << FormatEnvironments(environments, ctx.format, /*single=*/false);
  return absl::OkStatus();
}

absl::Status GetEnvironment(const EnvironmentCommandContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json environment,
                             Call(ctx, "GET", "/v1/" + EnvironmentName(ctx.project, name)));
  *ctx.out << FormatEnvironments({environment}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status CreateEnvironment(const EnvironmentCommandContext& ctx, const std::string& file,
                               const std::string& id, std::istream& in) {
  std::string text;
  if (file == "-") {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    SUBMARINE_ASSIGN_OR_RETURN(text, config::ReadFile(file));
  }
  SUBMARINE_ASSIGN_OR_RETURN(EnvironmentCreation creation, ParseEnvironmentFile(text, id));
  SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json environment,
                             Call(ctx, "POST",
                                  absl::StrCat(Collection(ctx.project), "?environmentId=",
                                               UrlEncode(creation.environment_id)),
                                  creation.body));
  *ctx.out << FormatEnvironments({environment}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status DeleteEnvironment(const EnvironmentCommandContext& ctx, const std::string& name,
                               const std::string& etag) {
  std::string path = "/v1/" + EnvironmentName(ctx.project, name);
  if (!etag.empty()) absl::StrAppend(&path, "?etag=", UrlEncode(etag));
  SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json response, Call(ctx, "DELETE", path));
  nlohmann::json environment =
      response.contains("environment") ? response["environment"] : response;
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted " << environment.value("name", EnvironmentName(ctx.project, name)) << "\n";
  } else {
    *ctx.out << FormatEnvironments({environment}, ctx.format, /*single=*/true);
  }
  return absl::OkStatus();
}

}  // namespace submarine::cli
