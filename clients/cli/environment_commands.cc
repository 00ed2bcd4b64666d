#include "clients/cli/environment_commands.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

namespace env = submarine::environment::v1;

constexpr char kEnvironmentService[] = "submarine.environment.v1.EnvironmentService.";

std::string EnvironmentRpc(const char* method) { return absl::StrCat(kEnvironmentService, method); }

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
  // Unknown fields are refused: a misspelt key would otherwise be dropped without a word.
  auto parsed = google::protobuf::util::JsonStringToMessage(body.dump(), &creation.environment);
  if (!parsed.ok()) {
    return InvalidField("file", absl::StrCat("not an environment: ", parsed.message().as_string()));
  }
  return creation;
}

absl::Status ListEnvironments(const ProjectCommandContext& ctx, const std::string& filter,
                              const std::string& order_by, int page_size) {
  std::vector<env::Environment> environments;
  env::ListEnvironmentsRequest request;
  request.set_parent("projects/" + ctx.project);
  request.set_filter(filter);
  request.set_order_by(order_by);
  request.set_page_size(page_size);
  do {
    SUBMARINE_ASSIGN_OR_RETURN(env::ListEnvironmentsResponse page,
                               ctx.client->Call<env::ListEnvironmentsResponse>(
                                   EnvironmentRpc("ListEnvironments"), request));
    for (auto& e : *page.mutable_environments()) environments.push_back(std::move(e));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  *ctx.out << FormatEnvironments(environments, ctx.format, /*single=*/false);
  return absl::OkStatus();
}

absl::Status GetEnvironment(const ProjectCommandContext& ctx, const std::string& name) {
  env::GetEnvironmentRequest request;
  request.set_name(EnvironmentName(ctx.project, name));
  SUBMARINE_ASSIGN_OR_RETURN(
      env::Environment environment,
      ctx.client->Call<env::Environment>(EnvironmentRpc("GetEnvironment"), request));
  *ctx.out << FormatEnvironments({environment}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status CreateEnvironment(const ProjectCommandContext& ctx, const std::string& file,
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
  env::CreateEnvironmentRequest request;
  request.set_parent("projects/" + ctx.project);
  request.set_environment_id(creation.environment_id);
  *request.mutable_environment() = std::move(creation.environment);
  SUBMARINE_ASSIGN_OR_RETURN(
      env::Environment environment,
      ctx.client->Call<env::Environment>(EnvironmentRpc("CreateEnvironment"), request));
  *ctx.out << FormatEnvironments({environment}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status DeleteEnvironment(const ProjectCommandContext& ctx, const std::string& name,
                               const std::string& etag) {
  env::DeleteEnvironmentRequest request;
  request.set_name(EnvironmentName(ctx.project, name));
  request.set_etag(etag);
  SUBMARINE_ASSIGN_OR_RETURN(env::DeleteEnvironmentResponse response,
                             ctx.client->Call<env::DeleteEnvironmentResponse>(
                                 EnvironmentRpc("DeleteEnvironment"), request));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted "
             << (response.environment().name().empty() ? request.name()
                                                       : response.environment().name())
             << "\n";
  } else {
    *ctx.out << FormatEnvironments({response.environment()}, ctx.format, /*single=*/true);
  }
  return absl::OkStatus();
}

}  // namespace submarine::cli
