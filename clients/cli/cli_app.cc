#include "clients/cli/cli_app.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "clients/cli/api_client.h"
#include "clients/cli/credentials.h"
#include "clients/cli/environment_commands.h"
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
  // Client commands of the permission service.
  std::string second;  // a second positional argument (e.g. the user of `team add-member`)
  std::string username;
  bool password_stdin = false;
  std::string display_name;
  std::string email;
  std::string description;
  std::string disabled;  // "true" / "false" / "" (unchanged)
  std::string admin;
  bool admin_flag = false;
  std::string owner;
  std::string role;
  std::string user;
  std::string ttl;
  std::string type = "generic";
  std::string secret_file;
  std::string principal;
  std::string resource;
  std::string since;
  std::string until;
  int limit = 100;
  int64_t cpu_millis = 0, memory_mib = 0, gpus = 0, experiments = 0, notebooks = 0,
          serving_replicas = 0;
};

// The API client for the resolved server, with the token from $SUBMARINE_TOKEN or the
// credentials file.
absl::StatusOr<ApiClient> MakeApiClient(const Flags& f) {
  std::string credentials_path = DefaultCredentialsPath();
  auto stored = ReadCredentials(credentials_path);
  SUBMARINE_ASSIGN_OR_RETURN(std::string server,
                             ResolveServer(f.server, std::getenv("SUBMARINE_SERVER"),
                                           StackPaths(AbsolutePath(f.data_dir)).StateFile(),
                                           stored.ok() ? stored->gateway : std::string()));
  const char* token = std::getenv("SUBMARINE_TOKEN");
  ApiClientOptions options;
  options.server = server;
  options.env_token = token != nullptr ? token : "";
  options.credentials_path = credentials_path;
  return ApiClient(std::move(options));
}

absl::StatusOr<bool> ParseBool(const std::string& text, const std::string& field) {
  if (text == "true" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "no" || text == "0") return false;
  return InvalidField(field, "expected true or false, got \"" + text + "\"");
}

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
      SUBMARINE_ASSIGN_OR_RETURN(ApiClient client, MakeApiClient(f));
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

// The client commands of the permission service (login, user, team, project, grant, quota,
// lease, token, credential, audit). Each group takes --server, --data-dir and -o.
class PermissionCli {
 public:
  PermissionCli(CLI::App& app, Flags& f, std::function<absl::Status()>& action, std::ostream& out,
                std::istream& in)
      : app_(app), f_(f), action_(action), out_(out), in_(in) {}

  void Add() {
    AddSession();
    AddUsers();
    AddTeams();
    AddProjects();
    AddGrants();
    AddQuotas();
    AddTokens();
    AddCredentials();
    AddAudit();
  }

 private:
  using Command = std::function<absl::Status(const ClientContext&)>;

  // Options every client command takes, on `cmd` (a group, or a top-level command).
  void AddClientOptions(CLI::App* cmd) {
    cmd->add_option("--server", f_.server,
                    "Gateway URL (default: $SUBMARINE_SERVER, else the local stack, else the "
                    "server you logged in to)");
    cmd->add_option("--data-dir", f_.data_dir, "Local stack whose gateway to use")
        ->capture_default_str();
    cmd->add_option("-o,--output", f_.output, "table, json or yaml")->capture_default_str();
  }

  CLI::App* Group(const std::string& name, const std::string& help) {
    CLI::App* group = app_.add_subcommand(name, help);
    group->require_subcommand(1);
    AddClientOptions(group);
    return group;
  }

  // A leaf command of `group` that runs `command`.
  CLI::App* Leaf(CLI::App* group, const std::string& name, const std::string& help,
                 Command command) {
    CLI::App* leaf = group->add_subcommand(name, help);
    leaf->fallthrough();
    leaf->callback([this, command] { action_ = Run(command); });
    return leaf;
  }

  std::function<absl::Status()> Run(Command command) {
    return [this, command]() -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(f_.output));
      SUBMARINE_ASSIGN_OR_RETURN(ApiClient api, MakeApiClient(f_));
      return command(ClientContext{&api, format, &out_, &in_});
    };
  }

  void AddSession() {
    CLI::App* login = app_.add_subcommand("login", "Log in and store the tokens (0600)");
    AddClientOptions(login);
    login->add_option("-u,--username", f_.username, "Username (prompted for if not given)");
    login->add_flag("--password-stdin", f_.password_stdin,
                    "Read the password from standard input instead of prompting");
    login->callback([this] {
      action_ = Run([this](const ClientContext& ctx) {
        return Login(ctx, LoginOptions{f_.username, f_.password_stdin});
      });
    });

    CLI::App* logout = app_.add_subcommand("logout", "End the session and forget the tokens");
    AddClientOptions(logout);
    logout->callback(
        [this] { action_ = Run([](const ClientContext& ctx) { return Logout(ctx); }); });

    CLI::App* whoami = app_.add_subcommand("whoami", "Show who the CLI acts as");
    AddClientOptions(whoami);
    whoami->callback(
        [this] { action_ = Run([](const ClientContext& ctx) { return WhoAmI(ctx); }); });
  }

  // --display-name, --email, --disabled, --admin for user create/update.
  absl::StatusOr<UserFields> UserFieldsFromFlags(CLI::App* cmd) {
    UserFields fields;
    if (cmd->count("--display-name") > 0) fields.display_name = f_.display_name;
    if (cmd->count("--email") > 0) fields.email = f_.email;
    if (!f_.disabled.empty()) {
      SUBMARINE_ASSIGN_OR_RETURN(bool v, ParseBool(f_.disabled, "disabled"));
      fields.disabled = v;
    }
    if (!f_.admin.empty()) {
      SUBMARINE_ASSIGN_OR_RETURN(bool v, ParseBool(f_.admin, "admin"));
      fields.admin = v;
    }
    return fields;
  }

  void AddUsers() {
    CLI::App* g = Group("user", "Manage users (creating and deleting them needs an admin)");
    CLI::App* list = Leaf(g, "list", "List users",
                          [this](const ClientContext& ctx) { return ListUsers(ctx, f_.filter); });
    list->add_option("--filter", f_.filter, "e.g. 'name = \"users/a*\"', 'admin = \"true\"'");
    Leaf(g, "get", "Show a user",
         [this](const ClientContext& ctx) { return GetUser(ctx, f_.name); })
        ->add_option("user", f_.name, "Username")
        ->required();
    CLI::App* create = g->add_subcommand("create", "Create a user (password prompted or stdin)");
    create->fallthrough();
    create->add_option("user", f_.name, "Username")->required();
    create->add_option("--display-name", f_.display_name, "Display name");
    create->add_option("--email", f_.email, "E-mail address");
    create->add_flag("--admin", f_.admin_flag, "Make the user a platform admin");
    create->add_flag("--password-stdin", f_.password_stdin,
                     "Read the initial password from standard input");
    create->callback([this, create] {
      action_ = Run([this, create](const ClientContext& ctx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(UserFields fields, UserFieldsFromFlags(create));
        if (f_.admin_flag) fields.admin = true;
        return CreateUser(ctx, f_.name, fields, f_.password_stdin);
      });
    });
    CLI::App* update = g->add_subcommand("update", "Change a user's fields");
    update->fallthrough();
    update->add_option("user", f_.name, "Username")->required();
    update->add_option("--display-name", f_.display_name, "Display name");
    update->add_option("--email", f_.email, "E-mail address");
    update->add_option("--disabled", f_.disabled, "true: the user can no longer log in");
    update->add_option("--admin", f_.admin, "true/false: platform admin");
    update->callback([this, update] {
      action_ = Run([this, update](const ClientContext& ctx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(UserFields fields, UserFieldsFromFlags(update));
        return UpdateUser(ctx, f_.name, fields);
      });
    });
    Leaf(g, "delete", "Delete a user and revoke their tokens",
         [this](const ClientContext& ctx) { return DeleteUser(ctx, f_.name); })
        ->add_option("user", f_.name, "Username")
        ->required();
    CLI::App* set_password = Leaf(
        g, "set-password", "Change a password (yours by default)",
        [this](const ClientContext& ctx) { return SetPassword(ctx, f_.name, f_.password_stdin); });
    set_password->add_option("user", f_.name, "Username (default: you)");
    set_password->add_flag("--password-stdin", f_.password_stdin,
                           "Read the passwords from standard input (for your own: the current "
                           "one on the first line, the new one on the second)");
  }

  void AddTeams() {
    CLI::App* g = Group("team", "Manage teams and their members");
    Leaf(g, "list", "List teams", [](const ClientContext& ctx) { return ListTeams(ctx); });
    Leaf(g, "get", "Show a team",
         [this](const ClientContext& ctx) { return GetTeam(ctx, f_.name); })
        ->add_option("team", f_.name, "Team id")
        ->required();
    CLI::App* create =
        Leaf(g, "create", "Create a team (you become its owner)", [this](const ClientContext& ctx) {
          return CreateTeam(ctx, f_.name, f_.display_name, f_.description);
        });
    create->add_option("team", f_.name, "Team id")->required();
    create->add_option("--display-name", f_.display_name, "Display name");
    create->add_option("--description", f_.description, "Description");
    Leaf(g, "delete", "Delete a team",
         [this](const ClientContext& ctx) { return DeleteTeam(ctx, f_.name); })
        ->add_option("team", f_.name, "Team id")
        ->required();
    CLI::App* add = Leaf(g, "add-member", "Add a member or change a member's role",
                         [this](const ClientContext& ctx) {
                           return AddTeamMember(ctx, f_.name, f_.second, f_.role);
                         });
    add->add_option("team", f_.name, "Team id")->required();
    add->add_option("user", f_.second, "Username")->required();
    add->add_option("--role", f_.role, "member (default), maintainer or owner");
    CLI::App* remove = Leaf(
        g, "remove-member", "Remove a member",
        [this](const ClientContext& ctx) { return RemoveTeamMember(ctx, f_.name, f_.second); });
    remove->add_option("team", f_.name, "Team id")->required();
    remove->add_option("user", f_.second, "Username")->required();
    Leaf(g, "members", "List a team's members",
         [this](const ClientContext& ctx) { return ListTeamMembers(ctx, f_.name); })
        ->add_option("team", f_.name, "Team id")
        ->required();
  }

  void AddProjects() {
    CLI::App* g = Group("project", "Manage projects and their role bindings");
    Leaf(g, "list", "List the projects you can read",
         [](const ClientContext& ctx) { return ListProjects(ctx); });
    Leaf(g, "get", "Show a project",
         [this](const ClientContext& ctx) { return GetProject(ctx, f_.name); })
        ->add_option("project", f_.name, "Project id")
        ->required();
    CLI::App* create = Leaf(g, "create", "Create a project", [this](const ClientContext& ctx) {
      return CreateProject(ctx, f_.name, f_.display_name, f_.description, f_.owner);
    });
    create->add_option("project", f_.name, "Project id")->required();
    create->add_option("--display-name", f_.display_name, "Display name");
    create->add_option("--description", f_.description, "Description");
    create->add_option("--owner", f_.owner, "users/NAME or teams/NAME (default: you)");
    Leaf(g, "delete", "Delete a project",
         [this](const ClientContext& ctx) { return DeleteProject(ctx, f_.name); })
        ->add_option("project", f_.name, "Project id")
        ->required();
    CLI::App* bind = Leaf(
        g, "bind", "Give a user, a team or allUsers a role on a project",
        [this](const ClientContext& ctx) { return BindRole(ctx, f_.name, f_.second, f_.role); });
    bind->add_option("project", f_.name, "Project id")->required();
    bind->add_option("subject", f_.second, "users/NAME, teams/NAME or allUsers")->required();
    bind->add_option("--role", f_.role, "viewer, editor or admin")->required();
    CLI::App* unbind = Leaf(g, "unbind", "Remove a role binding", [this](const ClientContext& ctx) {
      return UnbindRole(ctx, f_.name, f_.second);
    });
    unbind->add_option("project", f_.name, "Project id")->required();
    unbind->add_option("binding", f_.second, "Binding id or name, or the subject")->required();
    Leaf(g, "bindings", "List a project's role bindings",
         [this](const ClientContext& ctx) { return ListRoleBindings(ctx, f_.name); })
        ->add_option("project", f_.name, "Project id")
        ->required();
  }

  void AddGrants() {
    CLI::App* g = Group("grant", "Share one resource with a user, a team or allUsers");
    Leaf(g, "list", "List the grants on a resource",
         [this](const ClientContext& ctx) { return ListGrants(ctx, f_.resource); })
        ->add_option("resource", f_.resource, "e.g. projects/p/environments/e")
        ->required();
    CLI::App* create =
        Leaf(g, "create", "Grant a permission on a resource", [this](const ClientContext& ctx) {
          return CreateGrant(ctx, f_.resource, f_.second, f_.role);
        });
    create->add_option("resource", f_.resource, "e.g. projects/p/environments/e")->required();
    create->add_option("subject", f_.second, "users/NAME, teams/NAME or allUsers")->required();
    create->add_option("--permission", f_.role, "read, write or admin")->required();
    Leaf(g, "delete", "Remove a grant",
         [this](const ClientContext& ctx) { return DeleteGrant(ctx, f_.name); })
        ->add_option("grant", f_.name, "Grant id or grants/ID")
        ->required();
  }

  void AddQuotas() {
    CLI::App* g = Group("quota", "Show and set resource limits of users and teams");
    Leaf(g, "get", "Limits and current use",
         [this](const ClientContext& ctx) { return GetQuota(ctx, f_.owner); })
        ->add_option("owner", f_.owner, "users/NAME or teams/NAME (a bare name is a user)")
        ->required();
    CLI::App* set = g->add_subcommand("set", "Set limits (admins); other limits are kept");
    set->fallthrough();
    set->add_option("owner", f_.owner, "users/NAME or teams/NAME")->required();
    set->add_option("--cpu-millis", f_.cpu_millis, "CPU in millicores");
    set->add_option("--memory-mib", f_.memory_mib, "Memory in MiB");
    set->add_option("--gpus", f_.gpus, "GPUs");
    set->add_option("--experiments", f_.experiments, "Concurrently running experiments");
    set->add_option("--notebooks", f_.notebooks, "Running notebook sessions");
    set->add_option("--serving-replicas", f_.serving_replicas, "Serving replicas");
    set->callback([this, set] {
      action_ = Run([this, set](const ClientContext& ctx) {
        QuotaLimits limits;
        auto take = [set](const char* flag, int64_t value, std::optional<int64_t>& into) {
          if (set->count(flag) > 0) into = value;
        };
        take("--cpu-millis", f_.cpu_millis, limits.cpu_millis);
        take("--memory-mib", f_.memory_mib, limits.memory_mib);
        take("--gpus", f_.gpus, limits.gpus);
        take("--experiments", f_.experiments, limits.experiments);
        take("--notebooks", f_.notebooks, limits.notebooks);
        take("--serving-replicas", f_.serving_replicas, limits.serving_replicas);
        return SetQuota(ctx, f_.owner, limits);
      });
    });

    CLI::App* leases = Group("lease", "Resource leases held by running workloads");
    Leaf(leases, "list", "Active leases", [this](const ClientContext& ctx) {
      return ListLeases(ctx, f_.owner);
    })->add_option("--owner", f_.owner, "users/NAME or teams/NAME (default: all you can see)");
  }

  void AddTokens() {
    CLI::App* g = Group("token", "Long-lived API tokens for the SDK, scripts and CI");
    Leaf(g, "list", "List API tokens", [this](const ClientContext& ctx) {
      return ListTokens(ctx, f_.user);
    })->add_option("--user", f_.user, "Whose (default: you)");
    CLI::App* create =
        Leaf(g, "create", "Create a token; it is printed once", [this](const ClientContext& ctx) {
          return CreateToken(ctx, f_.user, f_.display_name, f_.ttl);
        });
    create->add_option("--display-name", f_.display_name, "What it is for");
    create->add_option("--ttl", f_.ttl, "Lifetime, e.g. 90d or 12h (default: no expiry)");
    create->add_option("--user", f_.user, "For whom (admins; default: you)");
    CLI::App* revoke = Leaf(g, "revoke", "Revoke a token", [this](const ClientContext& ctx) {
      return RevokeToken(ctx, f_.user, f_.name);
    });
    revoke->add_option("token", f_.name, "Token id or users/NAME/tokens/ID")->required();
    revoke->add_option("--user", f_.user, "Whose (default: you)");
  }

  void AddCredentials() {
    CLI::App* g = Group("credential",
                        "Secrets (git tokens, object-store keys, keytabs) for "
                        "your workloads; sealed at rest, never shown again");
    Leaf(g, "list", "List credentials (metadata only)", [this](const ClientContext& ctx) {
      return ListCredentials(ctx, f_.user);
    })->add_option("--user", f_.user, "Whose (default: you)");
    CLI::App* create =
        Leaf(g, "create", "Store a credential (replaces one of the same id)",
             [this](const ClientContext& ctx) {
               return CreateCredential(ctx, f_.user, f_.name,
                                       CredentialInput{f_.type, f_.description, f_.secret_file});
             });
    create->add_option("credential", f_.name, "Credential id")->required();
    create->add_option("--type", f_.type, "git-token, s3-keys, kerberos-keytab or generic")
        ->capture_default_str();
    create->add_option("--description", f_.description, "Description");
    create->add_option("--secret-file", f_.secret_file,
                       "Read the secret from this file ('-': standard input); default: prompt");
    create->add_option("--user", f_.user, "Whose (default: you)");
    CLI::App* del = Leaf(g, "delete", "Delete a credential", [this](const ClientContext& ctx) {
      return DeleteCredential(ctx, f_.user, f_.name);
    });
    del->add_option("credential", f_.name, "Credential id or users/NAME/credentials/ID")
        ->required();
    del->add_option("--user", f_.user, "Whose (default: you)");
  }

  void AddAudit() {
    CLI::App* g = Group("audit", "The audit log of every mutation (admins)");
    CLI::App* list =
        Leaf(g, "list", "Query the audit log, newest first", [this](const ClientContext& ctx) {
          return ListAuditEvents(
              ctx, AuditQuery{f_.principal, f_.resource, f_.since, f_.until, f_.limit},
              static_cast<int64_t>(std::time(nullptr)));
        });
    list->add_option("--user", f_.principal,
                     "Only this principal (alice, users/alice, "
                     "services/x)");
    list->add_option("--resource", f_.resource, "Only this resource and its children");
    list->add_option("--since", f_.since, "RFC 3339 time, or a duration ago (e.g. 24h)");
    list->add_option("--until", f_.until, "RFC 3339 time, or a duration ago");
    list->add_option("--limit", f_.limit, "Events at most (0: all)")->capture_default_str();
  }

  CLI::App& app_;
  Flags& f_;
  std::function<absl::Status()>& action_;
  std::ostream& out_;
  std::istream& in_;
};

}  // namespace

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err, std::istream& in) {
  CLI::App app{"submarine: the Submarine ML platform command line"};
  app.require_subcommand(1);
  Flags flags;
  std::function<absl::Status()> action;
  int exit_code = 0;
  AddLocalCommands(app, flags, action, out, exit_code);
  AddEnvironmentCommands(app, flags, action, out, in);
  // Lives until the action ran: the command callbacks refer to it.
  PermissionCli permission_cli(app, flags, action, out, in);
  permission_cli.Add();
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
