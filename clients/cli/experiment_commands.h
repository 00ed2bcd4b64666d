#pragma once
// `submarine experiment ...`: run (from a YAML/JSON spec, optionally following it to the end),
// list, get, stop, delete and logs, over the REST API.

#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cli/environment_commands.h"
#include "submarine/experiment/v1/experiment.pb.h"

namespace submarine::cli {

// "x" -> "projects/<project>/experiments/x"; a full resource name is returned unchanged.
std::string ExperimentName(const std::string& project, const std::string& name_or_id);

// Reads an experiment from YAML or JSON text with the REST API's field names: either an
// ExperimentSpec (Apache Submarine's shape: `meta`, `environment`, `spec`, ...) or an Experiment
// (`spec`, `labels`, `description`). INVALID_ARGUMENT naming what is wrong otherwise (unknown
// fields are refused, so a misspelt key is not dropped without a word).
absl::StatusOr<experiment::v1::Experiment> ParseExperimentFile(const std::string& text);

// An experiment's tasks as a table: TASK (role-index), STATE, ATTEMPT, HOST, CPU (seconds),
// MEMORY (resident now / peak), GPU (memory now / peak and utilization, where the cluster reports
// it; "-" otherwise) and REASON. `experiment get` prints it under the experiment.
std::string FormatTasks(const experiment::v1::Experiment& e);

struct RunOptions {
  std::string file;  // a path, or "-" for stdin
  std::string id;    // "" = generated
  bool follow = false;
};
// Creates the experiment; with `follow`, shows its state as it changes and then its log until
// it ends, and fails (naming the state and reason) unless it SUCCEEDED.
absl::Status RunExperiment(const ProjectCommandContext& ctx, const RunOptions& options,
                           std::istream& in, std::ostream& err);
absl::Status ListExperiments(const ProjectCommandContext& ctx, const std::string& filter,
                             int page_size);
absl::Status GetExperiment(const ProjectCommandContext& ctx, const std::string& name);
absl::Status StopExperiment(const ProjectCommandContext& ctx, const std::string& name);
absl::Status DeleteExperiment(const ProjectCommandContext& ctx, const std::string& name);
// Runs a finished experiment again as a new attempt.
absl::Status RetryExperiment(const ProjectCommandContext& ctx, const std::string& name);
// A new experiment from `name`'s spec; `env` holds KEY=VALUE overrides of meta.envVars.
absl::Status CloneExperiment(const ProjectCommandContext& ctx, const std::string& name,
                             const std::string& id, const std::vector<std::string>& env);
// Prints a task's log ("" = the first task); with `follow`, keeps printing what the task
// writes until it ends, from one stream (StreamExperimentLogs over NDJSON).
absl::Status ExperimentLogs(const ProjectCommandContext& ctx, const std::string& name,
                            const std::string& task, bool follow);

}  // namespace submarine::cli
