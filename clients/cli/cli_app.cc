#include "clients/cli/cli_app.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>

#include "absl/status/status.h"
#include "clients/cli/environment_commands.h"
#include "clients/cli/local_stack.h"
#include "clients/cli/output.h"
#include "clients/cli/server_resolution.h"
#include "clients/cli/stack_paths.h"
#include "clients/cli/stack_supervisor.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

struct Flags {
  std::string data_dir = DefaultDataDir();
  int gateway_port = 8080;
  int timeout_s = 180;
  std::string output = "table";
  std::string server;
  std::string project = "default";
  std::string name;
  std::string file;
  std::string id;
  std::string etag;
  std::string filter;
  std::string order_by;
  int page_size = 0;
};

void AddLocalCommands(CLI::App& app, Flags& f, std::function<absl::Status()>& action,
                      std::ostream& out, int& exit_code) {
  CLI::App* local = app.add_subcommand("local", "Run the embedded single-host stack");
  local->require_subcommand(1);
  auto add_data_dir = [&f](CLI::App* cmd) {
    cmd->add_option("--data-dir", f.data_dir, "Data directory of the stack")->capture_default_str();
  };

  CLI::App* up = local->add_subcommand("up",
                                       "Start PostgreSQL, the event bus, the services and "
                                       "the gateway; return once all are healthy");
  add_data_dir(up);
  up->add_option("--gateway-port", f.gateway_port, "Gateway HTTP port (0: any free port)")
      ->capture_default_str();
  up->add_option("--timeout", f.timeout_s, "Seconds to wait for the stack to be healthy")
      ->capture_default_str();
  up->callback([&] {
    action = [&] {
      return LocalUp(UpOptions{f.data_dir, f.gateway_port, std::chrono::seconds(f.timeout_s)}, out);
    };
  });

  CLI::App* down = local->add_subcommand("down", "Stop everything the stack runs");
  add_data_dir(down);
  down->callback([&] { action = [&] { return LocalDown(f.data_dir, out); }; });

  CLI::App* status = local->add_subcommand("status", "Show each process, its pid and health");
  add_data_dir(status);
  status->add_option("-o,--output", f.output, "table, json or yaml")->capture_default_str();
  status->callback([&] {
    action = [&]() -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(f.output));
      SUBMARINE_ASSIGN_OR_RETURN(StackHealth health, InspectStack(f.data_dir));
      out << FormatStackHealth(health, format);
      if (!health.Healthy()) exit_code = 1;
      return absl::OkStatus();
    };
  });

  CLI::App* supervise =
      local->add_subcommand("supervise", "Run the stack's supervisor in the foreground");
  supervise->group("");  // started by `up`; hidden from help
  add_data_dir(supervise);
  supervise->add_option("--gateway-port", f.gateway_port)->capture_default_str();
  supervise->callback([&] {
    action = [&]() -> absl::Status {
      config::v1::LogConfig log_config;
      log::Init(log_config, "supervisor");
      SUBMARINE_ASSIGN_OR_RETURN(std::string bin_dir, SelfBinDir());
      if (::chdir("/") != 0) return Internal("chdir / failed");
      SupervisorOptions options;
      options.data_dir = AbsolutePath(f.data_dir);
      options.gateway_port = f.gateway_port;
      options.bin_dir = bin_dir;
      return StackSupervisor(options).Run();
    };
  });
}

void AddEnvironmentCommands(CLI::App& app, Flags& f, std::function<absl::Status()>& action,
                            std::ostream& out, std::istream& in) {
  CLI::App* env = app.add_subcommand("environment", "Manage environment profiles");
  env->alias("env");
  env->require_subcommand(1);
  env->add_option("--server", f.server,
                  "Gateway URL (default: $SUBMARINE_SERVER, else the local stack)");
  env->add_option("--data-dir", f.data_dir, "Local stack whose gateway to use")
      ->capture_default_str();
  env->add_option("--project", f.project, "Project")->capture_default_str();
  env->add_option("-o,--output", f.output, "table, json or yaml")->capture_default_str();

  // Runs `command` with a client for the resolved server.
  auto with_context = [&f,
                       &out](std::function<absl::Status(const EnvironmentCommandContext&)> command)
      -> std::function<absl::Status()> {
    return [&f, &out, command]() -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(f.output));
      SUBMARINE_ASSIGN_OR_RETURN(std::string server,
                                 ResolveServer(f.server, std::getenv("SUBMARINE_SERVER"),
                                               StackPaths(AbsolutePath(f.data_dir)).StateFile()));
      HttpClient client(server);
      return command(EnvironmentCommandContext{&client, f.project, format, &out});
    };
  };

  CLI::App* list = env->add_subcommand("list", "List environments (every page)");
  list->add_option("--filter", f.filter, "e.g. 'labels.team = \"ml\"' or 'name = \"py*\"'");
  list->add_option("--order-by", f.order_by, "\"create_time\" or \"create_time desc\"");
  list->add_option("--page-size", f.page_size, "Items per request (0: server default)");
  list->callback([&, with_context] {
    action = with_context([&f](const EnvironmentCommandContext& ctx) {
      return ListEnvironments(ctx, f.filter, f.order_by, f.page_size);
    });
  });

  CLI::App* get = env->add_subcommand("get", "Show one environment");
  get->add_option("name", f.name, "Environment id or full name")->required();
  get->callback([&, with_context] {
    action = with_context(
        [&f](const EnvironmentCommandContext& ctx) { return GetEnvironment(ctx, f.name); });
  });

  CLI::App* create = env->add_subcommand("create", "Create an environment from a YAML/JSON file");
  create->add_option("-f,--file", f.file, "Environment file, '-' for stdin")->required();
  create->add_option("--id", f.id, "Environment id (default: `name` in the file)");
  create->callback([&, with_context] {
    action = with_context([&f, &in](const EnvironmentCommandContext& ctx) {
      return CreateEnvironment(ctx, f.file, f.id, in);
    });
  });

  CLI::App* del = env->add_subcommand("delete", "Delete an environment");
  del->add_option("name", f.name, "Environment id or full name")->required();
  del->add_option("--etag", f.etag, "Only delete if the stored etag matches");
  del->callback([&, with_context] {
    action = with_context([&f](const EnvironmentCommandContext& ctx) {
      return DeleteEnvironment(ctx, f.name, f.etag);
    });
  });

  for (CLI::App* leaf : {list, get, create, del}) leaf->fallthrough();
}

}  // namespace

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err, std::istream& in) {
  CLI::App app{"submarine: the Submarine ML platform command line"};
  app.require_subcommand(1);
  Flags flags;
  std::function<absl::Status()> action;
  int exit_code = 0;
  AddLocalCommands(app, flags, action, out, exit_code);
  AddEnvironmentCommands(app, flags, action, out, in);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  if (!action) return 0;
  absl::Status status = action();
  out.flush();
  if (!status.ok()) {
    err << "error: " << CodeName(static_cast<int>(status.code())) << ": " << Message(status)
        << "\n";
    return 1;
  }
  return exit_code;
}

}  // namespace submarine::cli
