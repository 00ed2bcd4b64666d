#include "clients/cli/experiment_commands.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cli/output.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

namespace ex = submarine::experiment::v1;

constexpr char kExperimentService[] = "submarine.experiment.v1.ExperimentService.";
// How often a follower asks again (a person watching, not a synchronisation).
constexpr auto kFollowPeriod = std::chrono::milliseconds(500);

std::string ExperimentRpc(const char* method) { return absl::StrCat(kExperimentService, method); }

bool Final(ex::State s) { return s == ex::SUCCEEDED || s == ex::FAILED || s == ex::KILLED; }

std::string StateText(ex::State s) { return ex::State_Name(s); }

std::string FormatExperiments(const std::vector<ex::Experiment>& items, OutputFormat format,
                              bool single) {
  static const auto* columns = new std::vector<Column<ex::Experiment>>{
      {"NAME", [](const ex::Experiment& e) { return LastSegmentOf(e.name()); }},
      {"STATE", [](const ex::Experiment& e) { return StateText(e.state()); }},
      {"FRAMEWORK",
       [](const ex::Experiment& e) {
         return e.reproducibility().resolved_spec().meta().framework();
       }},
      {"OWNER", [](const ex::Experiment& e) { return LastSegmentOf(e.owner()); }},
      {"LABELS", [](const ex::Experiment& e) { return LabelsText(e.labels()); }},
      {"CREATED", [](const ex::Experiment& e) { return TimeText(e.create_time()); }},
      {"REASON", [](const ex::Experiment& e) { return e.state_reason(); }}};
  return FormatMessages(items, *columns, format, single);
}

// Bytes as MiB, GiB ... with one decimal ("512.0Mi").
std::string BytesText(int64_t bytes) {
  static const char* const kUnits[] = {"Ki", "Mi", "Gi", "Ti"};
  if (bytes < 1024) return absl::StrCat(bytes);
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f%s", value, kUnits[unit]);
}

absl::StatusOr<ex::Experiment> Get(const ProjectCommandContext& ctx, const std::string& name) {
  ex::GetExperimentRequest request;
  request.set_name(name);
  return ctx.client->Call<ex::Experiment>(ExperimentRpc("GetExperiment"), request);
}

// Prints what is new in `task`'s log from `*offset`; returns whether the log is complete.
absl::StatusOr<bool> PrintLog(const ProjectCommandContext& ctx, const std::string& name,
                              const std::string& task, int64_t* offset) {
  for (;;) {
    ex::GetExperimentLogsRequest request;
    request.set_name(name);
    request.set_task(task);
    request.set_offset(*offset);
    SUBMARINE_ASSIGN_OR_RETURN(
        ex::ExperimentLogs page,
        ctx.client->Call<ex::ExperimentLogs>(ExperimentRpc("GetExperimentLogs"), request));
    *ctx.out << page.data();
    ctx.out->flush();
    *offset = page.next_offset();
    if (page.data().empty()) return page.complete();
  }
}

absl::Status Outcome(const ex::Experiment& e) {
  if (e.state() == ex::SUCCEEDED) return absl::OkStatus();
  return MakeError(absl::StatusCode::kAborted, "EXPERIMENT_NOT_SUCCEEDED",
                   absl::StrCat(e.name(), " ended ", StateText(e.state()), ": ", e.state_reason()));
}

// Follows `name` until it ends: state changes on `err`, the first task's log on out.
absl::Status Follow(const ProjectCommandContext& ctx, const std::string& name, std::ostream& err) {
  std::string last;
  int64_t offset = 0;
  std::string task;
  int warned = 0;  // warnings printed
  for (;;) {
    SUBMARINE_ASSIGN_OR_RETURN(ex::Experiment e, Get(ctx, name));
    std::string line = absl::StrCat(LastSegmentOf(name), " ", StateText(e.state()),
                                    e.state_reason().empty() ? "" : ": ", e.state_reason());
    if (line != last) {
      err << line << "\n";
      last = line;
    }
    for (int i = warned; i < e.warnings_size(); ++i) err << "warning: " << e.warnings(i) << "\n";
    warned = std::max(warned, e.warnings_size());
    if (task.empty() && e.tasks_size() > 0) {
      task = absl::StrCat(e.tasks(0).role(), "-", e.tasks(0).index());
    }
    if (!task.empty()) {
      SUBMARINE_ASSIGN_OR_RETURN(bool complete, PrintLog(ctx, name, task, &offset));
      (void)complete;
    }
    if (Final(e.state())) {
      if (!task.empty()) SUBMARINE_RETURN_IF_ERROR(PrintLog(ctx, name, task, &offset).status());
      return Outcome(e);
    }
    std::this_thread::sleep_for(kFollowPeriod);
  }
}

}  // namespace

std::string ExperimentName(const std::string& project, const std::string& name_or_id) {
  if (name_or_id.rfind("projects/", 0) == 0) return name_or_id;
  return absl::StrCat("projects/", project, "/experiments/", name_or_id);
}

absl::StatusOr<ex::Experiment> ParseExperimentFile(const std::string& text) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string json_text, config::YamlToJson(text));
  nlohmann::json body = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return InvalidField("file", "an experiment file must hold a mapping (YAML or JSON object)");
  }
  // Apache Submarine's files are an ExperimentSpec: wrap it.
  if (body.contains("meta")) body = nlohmann::json{{"spec", body}};
  ex::Experiment experiment;
  auto parsed = google::protobuf::util::JsonStringToMessage(body.dump(), &experiment);
  if (!parsed.ok()) {
    return InvalidField("file", absl::StrCat("not an experiment: ", parsed.message().as_string()));
  }
  return experiment;
}

absl::Status RunExperiment(const ProjectCommandContext& ctx, const RunOptions& options,
                           std::istream& in, std::ostream& err) {
  std::string text;
  if (options.file == "-") {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    SUBMARINE_ASSIGN_OR_RETURN(text, config::ReadFile(options.file));
  }
  SUBMARINE_ASSIGN_OR_RETURN(ex::Experiment experiment, ParseExperimentFile(text));
  ex::CreateExperimentRequest request;
  request.set_parent("projects/" + ctx.project);
  request.set_experiment_id(options.id);
  *request.mutable_experiment() = std::move(experiment);
  SUBMARINE_ASSIGN_OR_RETURN(
      ex::Experiment created,
      ctx.client->Call<ex::Experiment>(ExperimentRpc("CreateExperiment"), request));
  if (!options.follow) {
    *ctx.out << FormatExperiments({created}, ctx.format, /*single=*/true);
    return absl::OkStatus();
  }
  return Follow(ctx, created.name(), err);
}

absl::Status ListExperiments(const ProjectCommandContext& ctx, const std::string& filter,
                             int page_size) {
  std::vector<ex::Experiment> items;
  ex::ListExperimentsRequest request;
  request.set_parent("projects/" + ctx.project);
  request.set_filter(filter);
  request.set_page_size(page_size);
  do {
    SUBMARINE_ASSIGN_OR_RETURN(
        ex::ListExperimentsResponse page,
        ctx.client->Call<ex::ListExperimentsResponse>(ExperimentRpc("ListExperiments"), request));
    for (auto& e : *page.mutable_experiments()) items.push_back(std::move(e));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  *ctx.out << FormatExperiments(items, ctx.format, /*single=*/false);
  return absl::OkStatus();
}

std::string FormatTasks(const ex::Experiment& e) {
  static const auto* columns = new std::vector<Column<ex::Task>>{
      {"TASK", [](const ex::Task& t) { return absl::StrCat(t.role(), "-", t.index()); }},
      {"STATE", [](const ex::Task& t) { return StateText(t.state()); }},
      {"ATTEMPT", [](const ex::Task& t) { return absl::StrCat(t.attempt()); }},
      {"HOST", [](const ex::Task& t) { return t.host(); }},
      {"CPU", [](const ex::Task& t) { return absl::StrFormat("%.1fs", t.cpu_seconds()); }},
      {"MEMORY",
       [](const ex::Task& t) {
         return absl::StrCat(BytesText(t.memory_bytes()), "/", BytesText(t.max_memory_bytes()));
       }},
      {"GPU",
       [](const ex::Task& t) -> std::string {
         if (!t.has_gpu_memory_bytes()) return "-";
         return absl::StrFormat("%s/%s %.0f%%", BytesText(t.gpu_memory_bytes()),
                                BytesText(t.max_gpu_memory_bytes()), t.gpu_utilization());
       }},
      {"REASON", [](const ex::Task& t) { return t.message(); }}};
  return FormatMessages(std::vector<ex::Task>(e.tasks().begin(), e.tasks().end()), *columns,
                        OutputFormat::kTable, /*single=*/false);
}

absl::Status GetExperiment(const ProjectCommandContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(ex::Experiment e, Get(ctx, ExperimentName(ctx.project, name)));
  *ctx.out << FormatExperiments({e}, ctx.format, /*single=*/true);
  if (ctx.format == OutputFormat::kTable && e.tasks_size() > 0) *ctx.out << "\n" << FormatTasks(e);
  return absl::OkStatus();
}

absl::Status StopExperiment(const ProjectCommandContext& ctx, const std::string& name) {
  ex::StopExperimentRequest request;
  request.set_name(ExperimentName(ctx.project, name));
  SUBMARINE_ASSIGN_OR_RETURN(
      ex::Experiment e, ctx.client->Call<ex::Experiment>(ExperimentRpc("StopExperiment"), request));
  *ctx.out << FormatExperiments({e}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status DeleteExperiment(const ProjectCommandContext& ctx, const std::string& name) {
  ex::DeleteExperimentRequest request;
  request.set_name(ExperimentName(ctx.project, name));
  SUBMARINE_ASSIGN_OR_RETURN(
      ex::DeleteExperimentResponse response,
      ctx.client->Call<ex::DeleteExperimentResponse>(ExperimentRpc("DeleteExperiment"), request));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted " << request.name() << "\n";
  } else {
    *ctx.out << FormatExperiments({response.experiment()}, ctx.format, /*single=*/true);
  }
  return absl::OkStatus();
}

absl::Status RetryExperiment(const ProjectCommandContext& ctx, const std::string& name) {
  ex::RetryExperimentRequest request;
  request.set_name(ExperimentName(ctx.project, name));
  SUBMARINE_ASSIGN_OR_RETURN(ex::Experiment e, ctx.client->Call<ex::Experiment>(
                                                   ExperimentRpc("RetryExperiment"), request));
  *ctx.out << FormatExperiments({e}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status CloneExperiment(const ProjectCommandContext& ctx, const std::string& name,
                             const std::string& id, const std::vector<std::string>& env) {
  ex::CloneExperimentRequest request;
  request.set_name(ExperimentName(ctx.project, name));
  request.set_experiment_id(id);
  for (const std::string& item : env) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidField("env", absl::StrCat("\"", item, "\" is not KEY=VALUE"));
    }
    (*request.mutable_env_vars())[item.substr(0, eq)] = item.substr(eq + 1);
  }
  SUBMARINE_ASSIGN_OR_RETURN(ex::Experiment e, ctx.client->Call<ex::Experiment>(
                                                   ExperimentRpc("CloneExperiment"), request));
  *ctx.out << FormatExperiments({e}, ctx.format, /*single=*/true);
  return absl::OkStatus();
}

absl::Status ExperimentLogs(const ProjectCommandContext& ctx, const std::string& name,
                            const std::string& task, bool follow) {
  std::string full = ExperimentName(ctx.project, name);
  if (!follow) {
    int64_t offset = 0;
    return PrintLog(ctx, full, task, &offset).status();
  }
  // One NDJSON stream (StreamExperimentLogs): the server sends new bytes as the task writes
  // them and ends the stream when the task has finished.
  ex::StreamExperimentLogsRequest request;
  request.set_name(full);
  request.set_task(task);
  request.set_follow(true);
  ex::ExperimentLogs logs;
  return ctx.client->InvokeStream(ExperimentRpc("StreamExperimentLogs"), request, &logs, [&] {
    *ctx.out << logs.data();
    ctx.out->flush();
    return absl::OkStatus();
  });
}

}  // namespace submarine::cli
