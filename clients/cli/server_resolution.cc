#include "clients/cli/server_resolution.h"

#include "absl/strings/str_cat.h"
#include "clients/cli/stack_state.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

absl::StatusOr<std::string> ResolveServer(const std::string& flag, const char* env,
                                          const std::string& state_file,
                                          const std::string& logged_in_gateway) {
  if (!flag.empty()) return TrimSlash(flag);
  if (env != nullptr && env[0] != '\0') return TrimSlash(env);
  auto state = ReadStackState(state_file);
  if (state.ok() && !state->gateway_url.empty() && state->phase == kPhaseRunning) {
    return TrimSlash(state->gateway_url);
  }
  if (!logged_in_gateway.empty()) return TrimSlash(logged_in_gateway);
  return MakeError(absl::StatusCode::kFailedPrecondition, "NO_SERVER",
                   absl::StrCat("no Submarine server: pass --server URL, set SUBMARINE_SERVER, "
                                "log in (`submarine login --server URL`) or start the local stack "
                                "(`submarine local up`; looked in ",
                                state_file, ")"),
                   {{"stateFile", state_file}});
}

}  // namespace submarine::cli
