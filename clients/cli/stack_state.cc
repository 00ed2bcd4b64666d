#include "clients/cli/stack_state.h"

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {

nlohmann::json StackStateToJson(const StackState& state) {
  nlohmann::json processes = nlohmann::json::array();
  for (const ProcessState& p : state.processes) {
    processes.push_back({{"name", p.name},
                         {"pid", p.pid},
                         {"state", p.state},
                         {"restarts", p.restarts},
                         {"ready", p.ready},
                         {"log", p.log}});
  }
  return {{"phase", state.phase},
          {"error", state.error},
          {"supervisorPid", state.supervisor_pid},
          {"dataDir", state.data_dir},
          {"gatewayUrl", state.gateway_url},
          {"postgres",
           {{"port", state.postgres_port},
            {"pid", state.postgres_pid},
            {"restarts", state.postgres_restarts}}},
          {"processes", processes}};
}

absl::StatusOr<StackState> StackStateFromJson(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("phase")) {
    return InvalidField("state", "not a local stack state object");
  }
  try {
    StackState state;
    state.phase = json.value("phase", "");
    state.error = json.value("error", "");
    state.supervisor_pid = json.value("supervisorPid", 0);
    state.data_dir = json.value("dataDir", "");
    state.gateway_url = json.value("gatewayUrl", "");
    if (json.contains("postgres") && json["postgres"].is_object()) {
      state.postgres_port = json["postgres"].value("port", 0);
      state.postgres_pid = json["postgres"].value("pid", 0);
      state.postgres_restarts = json["postgres"].value("restarts", 0);
    }
    if (json.contains("processes") && json["processes"].is_array()) {
      for (const auto& p : json["processes"]) {
        ProcessState ps;
        ps.name = p.value("name", "");
        ps.pid = p.value("pid", 0);
        ps.state = p.value("state", "");
        ps.restarts = p.value("restarts", 0);
        ps.ready = p.contains("ready") ? p["ready"] : nlohmann::json();
        ps.log = p.value("log", "");
        state.processes.push_back(std::move(ps));
      }
    }
    return state;
  } catch (const nlohmann::json::exception& e) {
    return InvalidField("state", e.what());
  }
}

absl::StatusOr<StackState> ReadStackState(const std::string& path) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, config::ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return InvalidField("state", absl::StrCat(path, " is not JSON"));
  return StackStateFromJson(json);
}

absl::Status WriteStackState(const std::string& path, const StackState& state) {
  return config::WriteFileAtomic(path, StackStateToJson(state).dump(2) + "\n", 0644);
}

}  // namespace submarine::cli
