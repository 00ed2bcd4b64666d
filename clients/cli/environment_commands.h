#pragma once
// `submarine environment list|get|create|delete`: the EnvironmentService RPCs through the
// gateway's REST API (/v1/projects/{project}/environments).

#include <istream>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli/api_client.h"
#include "clients/cli/output.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::cli {

// What a command on the resources of one project needs (environments, experiments, ...).
struct ProjectCommandContext {
  ApiClient* client = nullptr;  // authenticated (see api_client.h)
  std::string project = "default";
  OutputFormat format = OutputFormat::kTable;
  std::ostream* out = nullptr;
};

// "x" -> "projects/<project>/environments/x"; a full resource name is returned unchanged.
std::string EnvironmentName(const std::string& project, const std::string& name_or_id);

struct EnvironmentCreation {
  std::string environment_id;
  environment::v1::Environment environment;  // what to create (without `name`)
};

// Reads an Environment from YAML or JSON text (JSON is YAML) with the REST API's field names. The
// id is `id_flag` if given, else the last segment of the file's "name". INVALID_ARGUMENT if the
// text is not a mapping, has a field an Environment does not have, or no id can be found.
absl::StatusOr<EnvironmentCreation> ParseEnvironmentFile(const std::string& text,
                                                         const std::string& id_flag);

// Prints every environment matching `filter` (all pages, fetched `page_size` at a time; 0 lets
// the server choose).
absl::Status ListEnvironments(const ProjectCommandContext& ctx, const std::string& filter,
                              const std::string& order_by, int page_size);
absl::Status GetEnvironment(const ProjectCommandContext& ctx, const std::string& name);
// `file` is a path, or "-" to read `in`.
absl::Status CreateEnvironment(const ProjectCommandContext& ctx, const std::string& file,
                               const std::string& id, std::istream& in);
// Deletes (with `etag` checked when not empty) and prints what was deleted.
absl::Status DeleteEnvironment(const ProjectCommandContext& ctx, const std::string& name,
                               const std::string& etag);

}  // namespace submarine::cli
