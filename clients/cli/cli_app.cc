#include "clients/cli/cli_app.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/api_client.h"
#include "clients/cli/cluster_commands.h"
#include "clients/cli/credentials.h"
#include "clients/cli/environment_commands.h"
#include "clients/cli/experiment_commands.h"
#include "clients/cli/local_stack.h"
#include "clients/cli/output.h"
#include "clients/cli/permission_commands.h"
#include "clients/cli/server_resolution.h"
#include "clients/cli/stack_paths.h"
#include "clients/cli/stack_supervisor.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

// Every subcommand parses into its own options struct (CLI11's way): the struct is created when
// the subcommand is declared, its options write into it, and its callback hands it to the
// command. Options shared by a command group (where to connect, how to print) live in one struct
// per group, so they may come before or after the subcommand.

// What the parsed command line runs, and where commands print.
struct Runner {
  std::function<absl::Status()> action;
  std::ostream& out;
  std::istream& in;
  int exit_code = 0;
};

// Where a client command connects, how it retries, how it prints.
struct ConnectionOptions {
  std::string server;
  std::string data_dir = DefaultDataDir();
  std::string output = "table";
  int max_attempts = RetryPolicy().max_attempts;
  double retry_timeout_s = std::chrono::duration<double>(RetryPolicy().max_total).count();
};

// The API client for the resolved server, with the token from $SUBMARINE_TOKEN or the
// credentials file.
absl::StatusOr<ApiClient> MakeApiClient(const ConnectionOptions& c) {
  std::string credentials_path = DefaultCredentialsPath();
  auto stored = ReadCredentials(credentials_path);
  SUBMARINE_ASSIGN_OR_RETURN(std::string server,
                             ResolveServer(c.server, std::getenv("SUBMARINE_SERVER"),
                                           StackPaths(AbsolutePath(c.data_dir)).StateFile(),
                                           stored.ok() ? stored->gateway : std::string()));
  const char* token = std::getenv("SUBMARINE_TOKEN");
  ApiClientOptions options;
  options.server = server;
  options.env_token = token != nullptr ? token : "";
  // Inside a task: its workload identity as the platform renewed it last (the variable holds
  // the one it started with).
  if (const char* secrets = std::getenv("SUBMARINE_SECRETS_DIR"); secrets != nullptr) {
    std::ifstream in(absl::StrCat(secrets, "/SUBMARINE_TOKEN"));
    std::string current;
    if (in && std::getline(in, current) && !current.empty()) options.env_token = current;
  }
  options.credentials_path = credentials_path;
  options.retry.max_attempts = c.max_attempts;
  options.retry.max_total =
      std::chrono::milliseconds(static_cast<int64_t>(c.retry_timeout_s * 1000));
  return ApiClient(std::move(options));
}

// Declares ConnectionOptions on `cmd` (a group, or a top-level command) and returns them.
std::shared_ptr<ConnectionOptions> AddConnectionOptions(CLI::App* cmd) {
  auto c = std::make_shared<ConnectionOptions>();
  cmd->add_option("--server", c->server,
                  "Gateway URL (default: $SUBMARINE_SERVER, else the local stack, else the "
                  "server you logged in to)");
  cmd->add_option("--data-dir", c->data_dir, "Local stack whose gateway to use")
      ->capture_default_str();
  cmd->add_option("-o,--output", c->output, "table, json or yaml")->capture_default_str();
  cmd->add_option("--max-attempts", c->max_attempts,
                  "Attempts per request while the server is unavailable (1: no retries)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--retry-timeout", c->retry_timeout_s,
                  "Seconds after which a request is no longer retried")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  return c;
}

using ClientCommand = std::function<absl::Status(const ClientContext&)>;

// The action running `command` with a client for `connection`.
std::function<absl::Status()> WithClient(std::shared_ptr<ConnectionOptions> connection,
                                         Runner& runner, ClientCommand command) {
  return [connection, &runner, command]() -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(connection->output));
    SUBMARINE_ASSIGN_OR_RETURN(ApiClient api, MakeApiClient(*connection));
    return command(ClientContext{&api, format, &runner.out, &runner.in});
  };
}

// A client command group (`user`, `team`, ...) with its ConnectionOptions.
struct Group {
  CLI::App* app;
  std::shared_ptr<ConnectionOptions> connection;
};

Group AddGroup(CLI::App& app, const std::string& name, const std::string& help) {
  CLI::App* group = app.add_subcommand(name, help);
  group->require_subcommand(1);
  return Group{group, AddConnectionOptions(group)};
}

// Adds the leaf `name` to `group` with its own `Options`: `define` declares its options on it, and
// parsing the leaf makes `run` the action.
template <typename Options>
void AddLeaf(const Group& group, Runner& runner, const std::string& name, const std::string& help,
             const std::function<void(CLI::App*, Options*)>& define,
             std::function<absl::Status(const ClientContext&, const Options&)> run) {
  auto options = std::make_shared<Options>();
  CLI::App* leaf = group.app->add_subcommand(name, help);
  leaf->fallthrough();
  define(leaf, options.get());
  leaf->callback([&runner, connection = group.connection, options, run] {
    runner.action = WithClient(connection, runner, [options, run](const ClientContext& ctx) {
      return run(ctx, *options);
    });
  });
}

// The options of a subcommand that takes none of its own.
struct NoOptions {};

// ---- local

struct LocalUpOptions {
  std::string data_dir = DefaultDataDir();
  int gateway_port = 8080;
  int timeout_s = 180;
};
struct LocalDownOptions {
  std::string data_dir = DefaultDataDir();
};
struct LocalStatusOptions {
  std::string data_dir = DefaultDataDir();
  std::string output = "table";
};
struct SuperviseOptions {
  std::string data_dir = DefaultDataDir();
  int gateway_port = 8080;
};

void AddDataDir(CLI::App* cmd, std::string* data_dir) {
  cmd->add_option("--data-dir", *data_dir, "Data directory of the stack")->capture_default_str();
}

void AddLocalCommands(CLI::App& app, Runner& runner) {
  CLI::App* local = app.add_subcommand("local", "Run the embedded single-host stack");
  local->require_subcommand(1);

  auto up_options = std::make_shared<LocalUpOptions>();
  CLI::App* up = local->add_subcommand("up",
                                       "Start PostgreSQL, the event bus, the services and "
                                       "the gateway; return once all are healthy");
  AddDataDir(up, &up_options->data_dir);
  up->add_option("--gateway-port", up_options->gateway_port, "Gateway HTTP port (0: any free port)")
      ->capture_default_str();
  up->add_option("--timeout", up_options->timeout_s, "Seconds to wait for the stack to be healthy")
      ->capture_default_str();
  up->callback([&runner, o = up_options] {
    runner.action = [&runner, o] {
      return LocalUp(UpOptions{o->data_dir, o->gateway_port, std::chrono::seconds(o->timeout_s)},
                     runner.out);
    };
  });

  auto down_options = std::make_shared<LocalDownOptions>();
  CLI::App* down = local->add_subcommand("down", "Stop everything the stack runs");
  AddDataDir(down, &down_options->data_dir);
  down->callback([&runner, o = down_options] {
    runner.action = [&runner, o] { return LocalDown(o->data_dir, runner.out); };
  });

  auto status_options = std::make_shared<LocalStatusOptions>();
  CLI::App* status = local->add_subcommand("status", "Show each process, its pid and health");
  AddDataDir(status, &status_options->data_dir);
  status->add_option("-o,--output", status_options->output, "table, json or yaml")
      ->capture_default_str();
  status->callback([&runner, o = status_options] {
    runner.action = [&runner, o]() -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o->output));
      SUBMARINE_ASSIGN_OR_RETURN(StackHealth health, InspectStack(o->data_dir));
      runner.out << FormatStackHealth(health, format);
      if (!health.Healthy()) runner.exit_code = 1;
      return absl::OkStatus();
    };
  });

  auto supervise_options = std::make_shared<SuperviseOptions>();
  CLI::App* supervise =
      local->add_subcommand("supervise", "Run the stack's supervisor in the foreground");
  supervise->group("");  // started by `up`; hidden from help
  AddDataDir(supervise, &supervise_options->data_dir);
  supervise->add_option("--gateway-port", supervise_options->gateway_port)->capture_default_str();
  supervise->callback([&runner, o = supervise_options] {
    runner.action = [o]() -> absl::Status {
      config::v1::LogConfig log_config;
      log::Init(log_config, "supervisor");
      SUBMARINE_ASSIGN_OR_RETURN(std::string bin_dir, SelfBinDir());
      if (::chdir("/") != 0) return Internal("chdir / failed");
      SupervisorOptions options;
      options.data_dir = AbsolutePath(o->data_dir);
      options.gateway_port = o->gateway_port;
      options.bin_dir = bin_dir;
      return StackSupervisor(options).Run();
    };
  });
}

// ---- environment

struct EnvironmentListOptions {
  std::string filter;
  std::string order_by;
  int page_size = 0;
};
struct EnvironmentNameOptions {
  std::string name;
};
struct EnvironmentCreateOptions {
  std::string file;
  std::string id;
};
struct EnvironmentDeleteOptions {
  std::string name;
  std::string etag;
};

void AddEnvironmentCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "environment", "Manage environment profiles");
  g.app->alias("env");
  auto project = std::make_shared<std::string>("default");
  g.app->add_option("--project", *project, "Project")->capture_default_str();
  // The ProjectCommandContext of a client context.
  auto in_project = [project](const ClientContext& ctx) {
    return ProjectCommandContext{ctx.api, *project, ctx.format, ctx.out};
  };

  AddLeaf<EnvironmentListOptions>(
      g, runner, "list", "List environments (every page)",
      [](CLI::App* c, EnvironmentListOptions* o) {
        c->add_option("--filter", o->filter,
                      "e.g. 'labels.team = \"ml\"', 'name = \"py*\" OR labels.gpu:*'");
        c->add_option("--order-by", o->order_by, "\"create_time\" or \"create_time desc\"");
        c->add_option("--page-size", o->page_size, "Items per request (0: server default)");
      },
      [in_project](const ClientContext& ctx, const EnvironmentListOptions& o) {
        return ListEnvironments(in_project(ctx), o.filter, o.order_by, o.page_size);
      });
  AddLeaf<EnvironmentNameOptions>(
      g, runner, "get", "Show one environment",
      [](CLI::App* c, EnvironmentNameOptions* o) {
        c->add_option("name", o->name, "Environment id or full name")->required();
      },
      [in_project](const ClientContext& ctx, const EnvironmentNameOptions& o) {
        return GetEnvironment(in_project(ctx), o.name);
      });
  AddLeaf<EnvironmentCreateOptions>(
      g, runner, "create", "Create an environment from a YAML/JSON file",
      [](CLI::App* c, EnvironmentCreateOptions* o) {
        c->add_option("-f,--file", o->file, "Environment file, '-' for stdin")->required();
        c->add_option("--id", o->id, "Environment id (default: `name` in the file)");
      },
      [in_project](const ClientContext& ctx, const EnvironmentCreateOptions& o) {
        return CreateEnvironment(in_project(ctx), o.file, o.id, *ctx.in);
      });
  AddLeaf<EnvironmentDeleteOptions>(
      g, runner, "delete", "Delete an environment",
      [](CLI::App* c, EnvironmentDeleteOptions* o) {
        c->add_option("name", o->name, "Environment id or full name")->required();
        c->add_option("--etag", o->etag, "Only delete if the stored etag matches");
      },
      [in_project](const ClientContext& ctx, const EnvironmentDeleteOptions& o) {
        return DeleteEnvironment(in_project(ctx), o.name, o.etag);
      });
}

// ---- experiment

struct ExperimentListOptions {
  std::string filter;
  int page_size = 0;
};
struct ExperimentNameOptions {
  std::string name;
};
struct ExperimentCloneOptions {
  std::string name;
  std::string id;
  std::vector<std::string> env;
};
struct ExperimentLogsOptions {
  std::string name;
  std::string task;
  bool follow = false;
};

void AddExperimentCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "experiment", "Run experiments and watch them");
  g.app->alias("exp");
  auto project = std::make_shared<std::string>("default");
  g.app->add_option("--project", *project, "Project")->capture_default_str();
  auto in_project = [project](const ClientContext& ctx) {
    return ProjectCommandContext{ctx.api, *project, ctx.format, ctx.out};
  };
  AddLeaf<RunOptions>(
      g, runner, "run", "Submit an experiment from a YAML/JSON spec",
      [](CLI::App* c, RunOptions* o) {
        c->add_option("-f,--file", o->file,
                      "Spec file (Apache Submarine's ExperimentSpec or an "
                      "Experiment), '-' for stdin")
            ->required();
        c->add_option("--id", o->id, "Experiment id (default: generated)");
        c->add_flag("--follow", o->follow,
                    "Show its state and log until it ends; fail unless it succeeds");
      },
      [in_project](const ClientContext& ctx, const RunOptions& o) {
        return RunExperiment(in_project(ctx), o, *ctx.in, std::cerr);
      });
  AddLeaf<ExperimentListOptions>(
      g, runner, "list", "List experiments, newest first (every page)",
      [](CLI::App* c, ExperimentListOptions* o) {
        c->add_option(
            "--filter", o->filter,
            "e.g. 'state IN (PENDING, RUNNING)', 'labels.team = \"ml\" AND priority > 10'");
        c->add_option("--page-size", o->page_size, "Items per request (0: server default)");
      },
      [in_project](const ClientContext& ctx, const ExperimentListOptions& o) {
        return ListExperiments(in_project(ctx), o.filter, o.page_size);
      });
  struct Verb {
    const char* name;
    const char* help;
    absl::Status (*run)(const ProjectCommandContext&, const std::string&);
  };
  for (const Verb& v :
       {Verb{"get", "Show one experiment", &GetExperiment},
        Verb{"stop", "Stop an experiment (SIGTERM, then forced)", &StopExperiment},
        Verb{"retry", "Run a finished experiment again (a new attempt)", &RetryExperiment},
        Verb{"delete", "Delete an experiment and its logs (stopping it first)",
             &DeleteExperiment}}) {
    AddLeaf<ExperimentNameOptions>(
        g, runner, v.name, v.help,
        [](CLI::App* c, ExperimentNameOptions* o) {
          c->add_option("name", o->name, "Experiment id or full name")->required();
        },
        [in_project, run = v.run](const ClientContext& ctx, const ExperimentNameOptions& o) {
          return run(in_project(ctx), o.name);
        });
  }
  AddLeaf<ExperimentCloneOptions>(
      g, runner, "clone", "Submit a copy of an experiment, with changed variables",
      [](CLI::App* c, ExperimentCloneOptions* o) {
        c->add_option("name", o->name, "Experiment id or full name")->required();
        c->add_option("--id", o->id, "The copy's id (default: generated)");
        c->add_option("--env", o->env, "KEY=VALUE over meta.envVars (repeatable)");
      },
      [in_project](const ClientContext& ctx, const ExperimentCloneOptions& o) {
        return CloneExperiment(in_project(ctx), o.name, o.id, o.env);
      });
  AddLeaf<ExperimentLogsOptions>(
      g, runner, "logs", "Print a task's log",
      [](CLI::App* c, ExperimentLogsOptions* o) {
        c->add_option("name", o->name, "Experiment id or full name")->required();
        c->add_option("--task", o->task, "e.g. worker-0 (default: the first task)");
        c->add_flag("-f,--follow", o->follow, "Keep printing until the task ends");
      },
      [in_project](const ClientContext& ctx, const ExperimentLogsOptions& o) {
        return ExperimentLogs(in_project(ctx), o.name, o.task, o.follow);
      });
}

// ---- login, logout, whoami

void AddSessionCommands(CLI::App& app, Runner& runner) {
  CLI::App* login = app.add_subcommand("login", "Log in and store the tokens (0600)");
  auto login_connection = AddConnectionOptions(login);
  auto login_options = std::make_shared<LoginOptions>();
  login->add_option("-u,--username", login_options->username,
                    "Username (prompted for if not given)");
  login->add_flag("--password-stdin", login_options->password_stdin,
                  "Read the password from standard input instead of prompting");
  login->callback([&runner, login_connection, login_options] {
    runner.action = WithClient(login_connection, runner, [login_options](const ClientContext& ctx) {
      return Login(ctx, *login_options);
    });
  });

  CLI::App* logout = app.add_subcommand("logout", "End the session and forget the tokens");
  auto logout_connection = AddConnectionOptions(logout);
  logout->callback([&runner, logout_connection] {
    runner.action = WithClient(logout_connection, runner, Logout);
  });

  CLI::App* whoami = app.add_subcommand("whoami", "Show who the CLI acts as");
  auto whoami_connection = AddConnectionOptions(whoami);
  whoami->callback([&runner, whoami_connection] {
    runner.action = WithClient(whoami_connection, runner, WhoAmI);
  });
}

// ---- user

struct UserListOptions {
  std::string filter;
};
struct UserNameOptions {
  std::string user;
};
struct UserCreateOptions {
  std::string user;
  UserFields fields;  // display_name, email
  bool admin = false;
  bool password_stdin = false;
};
struct UserUpdateOptions {
  std::string user;
  UserFields fields;
};
struct SetPasswordOptions {
  std::string user;
  bool password_stdin = false;
};

void AddUserCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "user", "Manage users (creating and deleting them needs an admin)");
  AddLeaf<UserListOptions>(
      g, runner, "list", "List users",
      [](CLI::App* c, UserListOptions* o) {
        c->add_option("--filter", o->filter, "e.g. 'name = \"users/a*\"', 'admin = true'");
      },
      [](const ClientContext& ctx, const UserListOptions& o) { return ListUsers(ctx, o.filter); });
  AddLeaf<UserNameOptions>(
      g, runner, "get", "Show a user",
      [](CLI::App* c, UserNameOptions* o) {
        c->add_option("user", o->user, "Username")->required();
      },
      [](const ClientContext& ctx, const UserNameOptions& o) { return GetUser(ctx, o.user); });
  AddLeaf<UserCreateOptions>(
      g, runner, "create", "Create a user (password prompted or stdin)",
      [](CLI::App* c, UserCreateOptions* o) {
        c->add_option("user", o->user, "Username")->required();
        c->add_option("--display-name", o->fields.display_name, "Display name");
        c->add_option("--email", o->fields.email, "E-mail address");
        c->add_flag("--admin", o->admin, "Make the user a platform admin");
        c->add_flag("--password-stdin", o->password_stdin,
                    "Read the initial password from standard input");
      },
      [](const ClientContext& ctx, const UserCreateOptions& o) {
        UserFields fields = o.fields;
        if (o.admin) fields.admin = true;
        return CreateUser(ctx, o.user, fields, o.password_stdin);
      });
  AddLeaf<UserUpdateOptions>(
      g, runner, "update", "Change a user's fields",
      [](CLI::App* c, UserUpdateOptions* o) {
        c->add_option("user", o->user, "Username")->required();
        c->add_option("--display-name", o->fields.display_name, "Display name");
        c->add_option("--email", o->fields.email, "E-mail address");
        c->add_option("--disabled", o->fields.disabled, "true: the user can no longer log in");
        c->add_option("--admin", o->fields.admin, "true/false: platform admin");
      },
      [](const ClientContext& ctx, const UserUpdateOptions& o) {
        return UpdateUser(ctx, o.user, o.fields);
      });
  AddLeaf<UserNameOptions>(
      g, runner, "delete", "Delete a user and revoke their tokens",
      [](CLI::App* c, UserNameOptions* o) {
        c->add_option("user", o->user, "Username")->required();
      },
      [](const ClientContext& ctx, const UserNameOptions& o) { return DeleteUser(ctx, o.user); });
  AddLeaf<SetPasswordOptions>(
      g, runner, "set-password", "Change a password (yours by default)",
      [](CLI::App* c, SetPasswordOptions* o) {
        c->add_option("user", o->user, "Username (default: you)");
        c->add_flag("--password-stdin", o->password_stdin,
                    "Read the passwords from standard input (for your own: the current "
                    "one on the first line, the new one on the second)");
      },
      [](const ClientContext& ctx, const SetPasswordOptions& o) {
        return SetPassword(ctx, o.user, o.password_stdin);
      });
}

// ---- team

struct TeamOptions {
  std::string team;
};
struct TeamCreateOptions {
  std::string team;
  std::string display_name;
  std::string description;
};
struct AddMemberOptions {
  std::string team;
  std::string user;
  std::string role;
};
struct RemoveMemberOptions {
  std::string team;
  std::string user;
};

void AddTeamCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "team", "Manage teams and their members");
  auto team_id = [](CLI::App* c, TeamOptions* o) {
    c->add_option("team", o->team, "Team id")->required();
  };
  AddLeaf<NoOptions>(
      g, runner, "list", "List teams", [](CLI::App*, NoOptions*) {},
      [](const ClientContext& ctx, const NoOptions&) { return ListTeams(ctx); });
  AddLeaf<TeamOptions>(
      g, runner, "get", "Show a team", team_id,
      [](const ClientContext& ctx, const TeamOptions& o) { return GetTeam(ctx, o.team); });
  AddLeaf<TeamCreateOptions>(
      g, runner, "create", "Create a team (you become its owner)",
      [](CLI::App* c, TeamCreateOptions* o) {
        c->add_option("team", o->team, "Team id")->required();
        c->add_option("--display-name", o->display_name, "Display name");
        c->add_option("--description", o->description, "Description");
      },
      [](const ClientContext& ctx, const TeamCreateOptions& o) {
        return CreateTeam(ctx, o.team, o.display_name, o.description);
      });
  AddLeaf<TeamOptions>(
      g, runner, "delete", "Delete a team", team_id,
      [](const ClientContext& ctx, const TeamOptions& o) { return DeleteTeam(ctx, o.team); });
  AddLeaf<AddMemberOptions>(
      g, runner, "add-member", "Add a member or change a member's role",
      [](CLI::App* c, AddMemberOptions* o) {
        c->add_option("team", o->team, "Team id")->required();
        c->add_option("user", o->user, "Username")->required();
        c->add_option("--role", o->role, "member (default), maintainer or owner");
      },
      [](const ClientContext& ctx, const AddMemberOptions& o) {
        return AddTeamMember(ctx, o.team, o.user, o.role);
      });
  AddLeaf<RemoveMemberOptions>(
      g, runner, "remove-member", "Remove a member",
      [](CLI::App* c, RemoveMemberOptions* o) {
        c->add_option("team", o->team, "Team id")->required();
        c->add_option("user", o->user, "Username")->required();
      },
      [](const ClientContext& ctx, const RemoveMemberOptions& o) {
        return RemoveTeamMember(ctx, o.team, o.user);
      });
  AddLeaf<TeamOptions>(
      g, runner, "members", "List a team's members", team_id,
      [](const ClientContext& ctx, const TeamOptions& o) { return ListTeamMembers(ctx, o.team); });
}

// ---- project

struct ProjectOptions {
  std::string project;
};
struct ProjectFieldsOptions {
  std::string project;
  ProjectFields fields;
};
struct BindOptions {
  std::string project;
  std::string subject;
  std::string role;
};
struct UnbindOptions {
  std::string project;
  std::string binding;
};

void AddProjectCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "project", "Manage projects and their role bindings");
  auto project_id = [](CLI::App* c, ProjectOptions* o) {
    c->add_option("project", o->project, "Project id")->required();
  };
  AddLeaf<NoOptions>(
      g, runner, "list", "List the projects you can read", [](CLI::App*, NoOptions*) {},
      [](const ClientContext& ctx, const NoOptions&) { return ListProjects(ctx); });
  AddLeaf<ProjectOptions>(
      g, runner, "get", "Show a project", project_id,
      [](const ClientContext& ctx, const ProjectOptions& o) { return GetProject(ctx, o.project); });
  auto project_fields = [](CLI::App* c, ProjectFieldsOptions* o) {
    c->add_option("project", o->project, "Project id")->required();
    c->add_option("--display-name", o->fields.display_name, "Display name");
    c->add_option("--description", o->fields.description, "Description");
    c->add_option("--owner", o->fields.owner, "users/NAME or teams/NAME (create: default you)");
    c->add_option("--default-cluster", o->fields.default_cluster,
                  "Compute cluster of experiments whose spec names none (\"\": local)");
  };
  AddLeaf<ProjectFieldsOptions>(g, runner, "create", "Create a project", project_fields,
                                [](const ClientContext& ctx, const ProjectFieldsOptions& o) {
                                  return CreateProject(ctx, o.project, o.fields);
                                });
  AddLeaf<ProjectFieldsOptions>(g, runner, "update", "Change a project's fields (its admins)",
                                project_fields,
                                [](const ClientContext& ctx, const ProjectFieldsOptions& o) {
                                  return UpdateProject(ctx, o.project, o.fields);
                                });
  AddLeaf<ProjectOptions>(g, runner, "delete", "Delete a project", project_id,
                          [](const ClientContext& ctx, const ProjectOptions& o) {
                            return DeleteProject(ctx, o.project);
                          });
  AddLeaf<BindOptions>(
      g, runner, "bind", "Give a user, a team or allUsers a role on a project",
      [](CLI::App* c, BindOptions* o) {
        c->add_option("project", o->project, "Project id")->required();
        c->add_option("subject", o->subject, "users/NAME, teams/NAME or allUsers")->required();
        c->add_option("--role", o->role, "viewer, editor or admin")->required();
      },
      [](const ClientContext& ctx, const BindOptions& o) {
        return BindRole(ctx, o.project, o.subject, o.role);
      });
  AddLeaf<UnbindOptions>(
      g, runner, "unbind", "Remove a role binding",
      [](CLI::App* c, UnbindOptions* o) {
        c->add_option("project", o->project, "Project id")->required();
        c->add_option("binding", o->binding, "Binding id or name, or the subject")->required();
      },
      [](const ClientContext& ctx, const UnbindOptions& o) {
        return UnbindRole(ctx, o.project, o.binding);
      });
  AddLeaf<ProjectOptions>(g, runner, "bindings", "List a project's role bindings", project_id,
                          [](const ClientContext& ctx, const ProjectOptions& o) {
                            return ListRoleBindings(ctx, o.project);
                          });
}

// ---- grant

struct GrantListOptions {
  std::string resource;
};
struct GrantCreateOptions {
  std::string resource;
  std::string subject;
  std::string permission;
};
struct GrantDeleteOptions {
  std::string grant;
};

void AddGrantCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "grant", "Share one resource with a user, a team or allUsers");
  AddLeaf<GrantListOptions>(
      g, runner, "list", "List the grants on a resource",
      [](CLI::App* c, GrantListOptions* o) {
        c->add_option("resource", o->resource, "e.g. projects/p/environments/e")->required();
      },
      [](const ClientContext& ctx, const GrantListOptions& o) {
        return ListGrants(ctx, o.resource);
      });
  AddLeaf<GrantCreateOptions>(
      g, runner, "create", "Grant a permission on a resource",
      [](CLI::App* c, GrantCreateOptions* o) {
        c->add_option("resource", o->resource, "e.g. projects/p/environments/e")->required();
        c->add_option("subject", o->subject, "users/NAME, teams/NAME or allUsers")->required();
        c->add_option("--permission", o->permission, "read, write or admin")->required();
      },
      [](const ClientContext& ctx, const GrantCreateOptions& o) {
        return CreateGrant(ctx, o.resource, o.subject, o.permission);
      });
  AddLeaf<GrantDeleteOptions>(
      g, runner, "delete", "Remove a grant",
      [](CLI::App* c, GrantDeleteOptions* o) {
        c->add_option("grant", o->grant, "Grant id or grants/ID")->required();
      },
      [](const ClientContext& ctx, const GrantDeleteOptions& o) {
        return DeleteGrant(ctx, o.grant);
      });
}

// ---- quota, lease

struct QuotaGetOptions {
  std::string owner;
};
struct QuotaSetOptions {
  std::string owner;
  QuotaLimits limits;
};
struct LeaseListOptions {
  std::string owner;
};

void AddQuotaCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "quota", "Show and set resource limits of users and teams");
  AddLeaf<QuotaGetOptions>(
      g, runner, "get", "Limits and current use",
      [](CLI::App* c, QuotaGetOptions* o) {
        c->add_option("owner", o->owner, "users/NAME or teams/NAME (a bare name is a user)")
            ->required();
      },
      [](const ClientContext& ctx, const QuotaGetOptions& o) { return GetQuota(ctx, o.owner); });
  AddLeaf<QuotaSetOptions>(
      g, runner, "set", "Set limits (admins); other limits are kept",
      [](CLI::App* c, QuotaSetOptions* o) {
        c->add_option("owner", o->owner, "users/NAME or teams/NAME")->required();
        c->add_option("--cpu-millis", o->limits.cpu_millis, "CPU in millicores");
        c->add_option("--memory-mib", o->limits.memory_mib, "Memory in MiB");
        c->add_option("--gpus", o->limits.gpus, "GPUs");
        c->add_option("--experiments", o->limits.experiments, "Concurrently running experiments");
        c->add_option("--notebooks", o->limits.notebooks, "Running notebook sessions");
        c->add_option("--serving-replicas", o->limits.serving_replicas, "Serving replicas");
      },
      [](const ClientContext& ctx, const QuotaSetOptions& o) {
        return SetQuota(ctx, o.owner, o.limits);
      });

  Group leases = AddGroup(app, "lease", "Resource leases held by running workloads");
  AddLeaf<LeaseListOptions>(
      leases, runner, "list", "Active leases",
      [](CLI::App* c, LeaseListOptions* o) {
        c->add_option("--owner", o->owner, "users/NAME or teams/NAME (default: all you can see)");
      },
      [](const ClientContext& ctx, const LeaseListOptions& o) { return ListLeases(ctx, o.owner); });
}

// ---- token

struct TokenListOptions {
  std::string user;
};
struct TokenCreateOptions {
  std::string user;
  std::string display_name;
  std::string ttl;
  std::string project;
};
struct TokenRevokeOptions {
  std::string token;
  std::string user;
};

void AddTokenCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "token", "Long-lived API tokens for the SDK, scripts and CI");
  AddLeaf<TokenListOptions>(
      g, runner, "list", "List API tokens",
      [](CLI::App* c, TokenListOptions* o) {
        c->add_option("--user", o->user, "Whose (default: you)");
      },
      [](const ClientContext& ctx, const TokenListOptions& o) { return ListTokens(ctx, o.user); });
  AddLeaf<TokenCreateOptions>(
      g, runner, "create", "Create a token; it is printed once",
      [](CLI::App* c, TokenCreateOptions* o) {
        c->add_option("--display-name", o->display_name, "What it is for");
        c->add_option("--ttl", o->ttl, "Lifetime, e.g. 90d or 12h (default: no expiry)");
        c->add_option("--user", o->user, "For whom (admins; default: you)");
        c->add_option("--project", o->project,
                      "Limit it to one project's resources (needs --ttl, at most 30d)");
      },
      [](const ClientContext& ctx, const TokenCreateOptions& o) {
        return CreateToken(ctx, o.user, o.display_name, o.ttl, o.project);
      });
  AddLeaf<TokenRevokeOptions>(
      g, runner, "revoke", "Revoke a token",
      [](CLI::App* c, TokenRevokeOptions* o) {
        c->add_option("token", o->token, "Token id or users/NAME/tokens/ID")->required();
        c->add_option("--user", o->user, "Whose (default: you)");
      },
      [](const ClientContext& ctx, const TokenRevokeOptions& o) {
        return RevokeToken(ctx, o.user, o.token);
      });
}

// ---- credential

struct CredentialListOptions {
  std::string user;
  bool platform = false;
};
struct CredentialCreateOptions {
  std::string credential;
  std::string user;
  bool platform = false;
  CredentialInput input;
};
struct CredentialDeleteOptions {
  std::string credential;
  std::string user;
  bool platform = false;
};

// --user, or the platform's credentials with --platform.
std::string CredentialOwnerOption(const std::string& user, bool platform) {
  return platform ? std::string(kPlatformCredentials) : user;
}

void AddPlatformFlag(CLI::App* c, bool* platform) {
  c->add_flag("--platform", *platform,
              "The platform's credentials (administrators; e.g. a cluster's kubeconfig)");
}

void AddCredentialCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "credential",
                     "Secrets (git tokens, object-store keys, keytabs) for "
                     "your workloads; sealed at rest, never shown again");
  AddLeaf<CredentialListOptions>(
      g, runner, "list", "List credentials (metadata only)",
      [](CLI::App* c, CredentialListOptions* o) {
        c->add_option("--user", o->user, "Whose (default: you)");
        AddPlatformFlag(c, &o->platform);
      },
      [](const ClientContext& ctx, const CredentialListOptions& o) {
        return ListCredentials(ctx, CredentialOwnerOption(o.user, o.platform));
      });
  AddLeaf<CredentialCreateOptions>(
      g, runner, "create", "Store a credential (replaces one of the same id)",
      [](CLI::App* c, CredentialCreateOptions* o) {
        c->add_option("credential", o->credential, "Credential id")->required();
        c->add_option("--type", o->input.type,
                      "git-token, s3-keys, kerberos-keytab, kubeconfig or generic")
            ->capture_default_str();
        c->add_option("--description", o->input.description, "Description");
        c->add_option("--secret-file", o->input.secret_file,
                      "Read the secret from this file ('-': standard input); default: prompt");
        c->add_option("--user", o->user, "Whose (default: you)");
        AddPlatformFlag(c, &o->platform);
      },
      [](const ClientContext& ctx, const CredentialCreateOptions& o) {
        return CreateCredential(ctx, CredentialOwnerOption(o.user, o.platform), o.credential,
                                o.input);
      });
  AddLeaf<CredentialDeleteOptions>(
      g, runner, "delete", "Delete a credential",
      [](CLI::App* c, CredentialDeleteOptions* o) {
        c->add_option("credential", o->credential, "Credential id or users/NAME/credentials/ID")
            ->required();
        c->add_option("--user", o->user, "Whose (default: you)");
        AddPlatformFlag(c, &o->platform);
      },
      [](const ClientContext& ctx, const CredentialDeleteOptions& o) {
        return DeleteCredential(ctx, CredentialOwnerOption(o.user, o.platform), o.credential);
      });
}

// ---- cluster

struct ClusterListOptions {
  std::string filter;
};
struct ClusterNameOptions {
  std::string cluster;
};
struct ClusterChangeOptions {
  std::string cluster;
  ClusterInput input;
};

void AddClusterInputOptions(CLI::App* c, ClusterInput* in) {
  c->add_option("--capacity", in->capacity,
                "What its experiments may hold at once, e.g. cpu=64,memory=256Gi,nvidia.com/gpu=8");
  c->add_option("--allow-project", in->allowed_projects,
                "A project that may use it (repeat; default: every project)");
  c->add_option("--display-name", in->display_name, "Display name");
  c->add_option("--description", in->description, "Description");
}

void AddClusterCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "cluster",
                     "Compute clusters experiments run on (local, Kubernetes, YARN); "
                     "administrators manage them");
  AddLeaf<ClusterListOptions>(
      g, runner, "list", "List compute clusters",
      [](CLI::App* c, ClusterListOptions* o) {
        c->add_option("--filter", o->filter, "e.g. 'kind = \"kubernetes\"'");
      },
      [](const ClientContext& ctx, const ClusterListOptions& o) {
        return ListClusters(ctx, o.filter);
      });
  AddLeaf<ClusterNameOptions>(
      g, runner, "get", "Show one compute cluster",
      [](CLI::App* c, ClusterNameOptions* o) {
        c->add_option("cluster", o->cluster, "Cluster id or computeClusters/ID")->required();
      },
      [](const ClientContext& ctx, const ClusterNameOptions& o) {
        return GetCluster(ctx, o.cluster);
      });
  AddLeaf<ClusterChangeOptions>(
      g, runner, "create", "Create a compute cluster (administrators)",
      [](CLI::App* c, ClusterChangeOptions* o) {
        ClusterInput* in = &o->input;
        c->add_option("cluster", o->cluster, "Cluster id")->required();
        c->add_option("-f,--file", in->file, "A YAML/JSON ComputeCluster ('-': standard input)");
        c->add_flag("--kubernetes", in->kubernetes, "A Kubernetes cluster");
        c->add_option("--kubeconfig", in->kubeconfig,
                      "Its kubeconfig file, stored as platform/credentials/<cluster>-kubeconfig "
                      "(default: the services' in-cluster service account)");
        c->add_option("--kubeconfig-credential", in->kubeconfig_credential,
                      "A platform credential holding the kubeconfig");
        c->add_option("--context", in->context, "The kubeconfig context");
        c->add_option("--namespace", in->namespace_, "The namespace workloads run in");
        c->add_option("--default-image", in->default_image, "Image of roles that name none");
        c->add_option("--kueue-queue", in->kueue_queue, "Kueue LocalQueue of its workloads");
        c->add_flag("--indexed-jobs-only", in->indexed_jobs_only,
                    "Never use Kubeflow Trainer TrainJobs");
        c->add_flag("--yarn", in->yarn, "A YARN cluster");
        c->add_option("--rm-url", in->rm_url, "The YARN ResourceManager's web address");
        c->add_option("--yarn-user", in->yarn_user, "The user YARN services run as");
        c->add_option("--queue", in->queue, "The YARN queue");
        AddClusterInputOptions(c, in);
      },
      [](const ClientContext& ctx, const ClusterChangeOptions& o) {
        return CreateCluster(ctx, o.cluster, o.input);
      });
  AddLeaf<ClusterChangeOptions>(
      g, runner, "update", "Change a compute cluster's capacity, projects or description",
      [](CLI::App* c, ClusterChangeOptions* o) {
        c->add_option("cluster", o->cluster, "Cluster id or computeClusters/ID")->required();
        AddClusterInputOptions(c, &o->input);
      },
      [](const ClientContext& ctx, const ClusterChangeOptions& o) {
        return UpdateCluster(ctx, o.cluster, o.input);
      });
  AddLeaf<ClusterNameOptions>(
      g, runner, "delete", "Delete a compute cluster (its running experiments finish)",
      [](CLI::App* c, ClusterNameOptions* o) {
        c->add_option("cluster", o->cluster, "Cluster id or computeClusters/ID")->required();
      },
      [](const ClientContext& ctx, const ClusterNameOptions& o) {
        return DeleteCluster(ctx, o.cluster);
      });
}

// ---- audit

void AddAuditCommands(CLI::App& app, Runner& runner) {
  Group g = AddGroup(app, "audit", "The audit log of every mutation (admins)");
  AddLeaf<AuditQuery>(
      g, runner, "list", "Query the audit log, newest first",
      [](CLI::App* c, AuditQuery* o) {
        c->add_option("--user", o->principal,
                      "Only this principal (alice, users/alice, services/x)");
        c->add_option("--resource", o->resource, "Only this resource and its children");
        c->add_option("--since", o->since, "RFC 3339 time, or a duration ago (e.g. 24h)");
        c->add_option("--until", o->until, "RFC 3339 time, or a duration ago");
        c->add_option("--limit", o->limit, "Events at most (0: all)")->capture_default_str();
      },
      [](const ClientContext& ctx, const AuditQuery& o) {
        return ListAuditEvents(ctx, o, static_cast<int64_t>(std::time(nullptr)));
      });
}

}  // namespace

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err, std::istream& in) {
  CLI::App app{"submarine: the Submarine ML platform command line"};
  app.require_subcommand(1);
  // Lives until the action ran: the subcommands' callbacks and options refer to it.
  Runner runner{nullptr, out, in};
  AddLocalCommands(app, runner);
  AddEnvironmentCommands(app, runner);
  AddExperimentCommands(app, runner);
  AddSessionCommands(app, runner);
  AddUserCommands(app, runner);
  AddTeamCommands(app, runner);
  AddProjectCommands(app, runner);
  AddGrantCommands(app, runner);
  AddQuotaCommands(app, runner);
  AddTokenCommands(app, runner);
  AddCredentialCommands(app, runner);
  AddClusterCommands(app, runner);
  AddAuditCommands(app, runner);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  if (!runner.action) return 0;
  absl::Status status = runner.action();
  out.flush();
  if (!status.ok()) {
    err << "error: " << CodeName(static_cast<int>(status.code())) << ": " << Message(status)
        << "\n";
    return 1;
  }
  return runner.exit_code;
}

}  // namespace submarine::cli
