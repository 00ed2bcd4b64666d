#include "services/experiment/experiment_app.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/auth/principal.h"
#include "common/compute/kubernetes_backend.h"
#include "common/compute/local_backend.h"
#include "common/compute/yarn_backend.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "services/experiment/cluster_directory.h"
#include "services/experiment/controller.h"
#include "services/experiment/experiment_manager.h"
#include "services/experiment/experiment_service.h"
#include "services/experiment/experiment_store.h"
#include "services/experiment/submarine_v1_face.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::experiment {
namespace {

using submarine::config::v1::ExperimentServiceConfig;

constexpr auto kDefaultControlInterval = std::chrono::milliseconds(200);
constexpr auto kPeerTimeout = std::chrono::seconds(5);

// A call to a peer service for the caller of `call`: within its deadline (and kPeerTimeout), as
// this service acting for the caller's user.
void ActForCaller(grpc::ClientContext* ctx, const rpc::CallInfo& call) {
  ctx->set_deadline(std::min(call.deadline, std::chrono::system_clock::now() + kPeerTimeout));
  rpc::ActAs(ctx, auth::ServicePrincipal("experiment", call.user()), call.request_id);
}

// A peer's answer that the named resource does not exist, or is not the caller's to read (or
// the name is malformed): to the caller, all the same.
bool NotReadable(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::NOT_FOUND ||
         st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
         st.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
}

// Reads the profile from the environment service for the caller's user.
ExperimentManager::EnvironmentLookup EnvironmentLookup(const std::string& address) {
  std::shared_ptr<environment::v1::EnvironmentService::Stub> stub =
      environment::v1::EnvironmentService::NewStub(rpc::MakeChannel(address));
  return [stub](const rpc::CallInfo& call, const std::string& name,
                const std::string& field) -> absl::StatusOr<v1::EnvironmentRef> {
    grpc::ClientContext ctx;
    ActForCaller(&ctx, call);
    environment::v1::GetEnvironmentRequest req;
    req.set_name(name);
    environment::v1::Environment env;
    grpc::Status st = stub->GetEnvironment(&ctx, req, &env);
    if (st.ok()) {
      v1::EnvironmentRef profile;
      profile.set_name(env.name());
      profile.set_image(env.image());
      *profile.mutable_pip_dependencies() = env.kernel_spec().pip_dependencies();
      *profile.mutable_conda_dependencies() = env.kernel_spec().conda_dependencies();
      return profile;
    }
    if (!NotReadable(st)) return FromGrpcStatus(st);
    return InvalidField(
        field, absl::StrCat("unknown environment \"", name, "\" (or you may not read it)"));
  };
}

// The project's default compute cluster, read from the permission service for the caller. A
// project the caller cannot read has none here: the authorization that follows refuses it.
std::function<absl::StatusOr<std::string>(const rpc::CallInfo&, const std::string&)>
DefaultClusterLookup(const std::string& address) {
  std::shared_ptr<permission::v1::IdentityService::Stub> stub =
      permission::v1::IdentityService::NewStub(rpc::MakeChannel(address));
  return
      [stub](const rpc::CallInfo& call, const std::string& project) -> absl::StatusOr<std::string> {
        grpc::ClientContext ctx;
        ActForCaller(&ctx, call);
        permission::v1::GetProjectRequest req;
        req.set_name(project);
        permission::v1::Project out;
        grpc::Status st = stub->GetProject(&ctx, req, &out);
        if (st.ok()) return out.default_compute_cluster();
        if (NotReadable(st)) return std::string();
        return FromGrpcStatus(st);
      };
}

// Asks the permission service whether the caller has the credential (its metadata only).
ExperimentManager::ReadCheck CredentialChecker(const std::string& address) {
  std::shared_ptr<permission::v1::CredentialService::Stub> stub =
      permission::v1::CredentialService::NewStub(rpc::MakeChannel(address));
  return [stub](const rpc::CallInfo& call, const std::string& name,
                const std::string& field) -> absl::Status {
    grpc::ClientContext ctx;
    ActForCaller(&ctx, call);
    permission::v1::GetCredentialRequest req;
    req.set_name(name);
    permission::v1::Credential credential;
    grpc::Status st = stub->GetCredential(&ctx, req, &credential);
    if (st.ok()) return absl::OkStatus();
    if (!NotReadable(st)) return FromGrpcStatus(st);
    return InvalidField(field, absl::StrCat("unknown credential \"", name, "\" (or not yours)"));
  };
}

}  // namespace

rpc::ServiceSpec Spec() {
  rpc::ServiceSpec spec;
  spec.name = "experiment";
  spec.error_domain = kErrorDomain;
  spec.topic_prefix = "submarine.experiment.v1.";
  spec.migrations = {{"experiment", ExperimentMigrations()}};
  spec.statements = {&ExperimentStore::Statements()};
  return spec;
}

absl::Status Build(rpc::ServiceHost& host, const ExperimentServiceConfig& config) {
  compute::LocalBackend::Options local;
  local.root_dir = config.local().root_dir();
  if (local.root_dir.empty()) return InvalidField("local.root_dir", "is required");
  local.supervisor_path = config.local().supervisor_path();  // "" = beside this executable
  local.gpus.assign(config.local().gpus().begin(), config.local().gpus().end());
  SUBMARINE_ASSIGN_OR_RETURN(auto backend, compute::LocalBackend::Create(local));
  auto* clusters = host.Make<compute::Clusters>();
  clusters->Add("local", host.Own(std::move(backend)));
  for (int i = 0; i < config.kubernetes_size(); ++i) {
    const auto& k = config.kubernetes(i);
    const std::string field = absl::StrCat("kubernetes[", i, "]");
    kube::ClusterConfig cluster;
    if (k.kubeconfig().empty()) {
      SUBMARINE_ASSIGN_OR_RETURN(cluster, kube::InClusterConfig());
    } else {
      SUBMARINE_ASSIGN_OR_RETURN(cluster, kube::LoadKubeconfig(k.kubeconfig(), k.context()));
    }
    environment::v1::KubernetesConnection connection;
    connection.set_namespace_(k.namespace_());
    connection.set_default_image(k.default_image());
    connection.set_indexed_jobs_only(k.indexed_jobs_only());
    connection.set_kueue_queue(k.kueue_queue());
    if (k.logs_dir().empty()) return InvalidField(field + ".logs_dir", "is required");
    const std::string name = k.name().empty() ? "kubernetes" : k.name();
    if (clusters->Find(name) != nullptr) {
      return InvalidField(field + ".name", absl::StrCat("cluster \"", name, "\" is repeated"));
    }
    SUBMARINE_ASSIGN_OR_RETURN(auto kubernetes,
                               MakeKubernetesBackend(std::move(cluster), connection, k.logs_dir()));
    clusters->Add(name, host.Own(std::move(kubernetes)));
  }
  for (int i = 0; i < config.yarn_size(); ++i) {
    const auto& y = config.yarn(i);
    const std::string field = absl::StrCat("yarn[", i, "]");
    environment::v1::YarnConnection connection;
    connection.set_rm_url(y.rm_url());
    connection.set_user(y.user());
    connection.set_queue(y.queue());
    connection.set_registry_domain(y.registry_domain());
    connection.set_nodemanager_url(y.nodemanager_url());
    connection.set_default_image(y.default_image());
    connection.set_default_memory_mb(y.default_memory_mb());
    const std::string name = y.name().empty() ? "yarn" : y.name();
    if (clusters->Find(name) != nullptr) {
      return InvalidField(field + ".name", absl::StrCat("cluster \"", name, "\" is repeated"));
    }
    SUBMARINE_ASSIGN_OR_RETURN(auto yarn, MakeYarnBackend(connection, y.logs_dir(), field));
    clusters->Add(name, host.Own(std::move(yarn)));
  }

  QuotaClient* quota = nullptr;
  CredentialSource* credentials = nullptr;
  const auto& permission = host.config().permission();
  if (!permission.insecure_no_authorization() && !permission.address().empty()) {
    quota = host.Own(MakeGrpcQuotaClient(permission.address(), "experiment", kPeerTimeout));
    credentials =
        host.Own(MakeGrpcCredentialSource(permission.address(), "experiment", kPeerTimeout));
  }
  Controller::Options options;
  if (config.stop_grace_ms())
    options.stop_grace = std::chrono::milliseconds(config.stop_grace_ms());
  if (config.lease_ttl_seconds())
    options.lease_ttl_seconds = static_cast<int>(config.lease_ttl_seconds());
  options.max_running_tasks = static_cast<int>(config.local().max_running_tasks());
  options.credentials = credentials;
  options.task_server = config.task_server_url();
  options.sdk_path = config.sdk_python_path();
  options.python_envs = {config.python_env_dir(), config.pip_index_url(), config.pip_find_links()};
  if (credentials != nullptr && !options.task_server.empty()) {
    // Tasks that can reach the platform get an identity to do it with.
    options.tokens =
        host.Own(MakeGrpcWorkloadTokens(permission.address(), "experiment", kPeerTimeout));
  }
  if (config.identity_token_ttl_seconds() > 0) {
    options.identity_token_ttl = std::chrono::seconds(config.identity_token_ttl_seconds());
  }
  options.preemption = config.preemption();
  for (const auto& [project, weight] : config.fair_share_weights()) {
    const std::string field = absl::StrCat("fair_share_weights[", project, "]");
    std::string id;
    SUBMARINE_RETURN_IF_ERROR(api::ParseProjectName(project, field, &id));
    if (weight < 1) return InvalidField(field, "must be at least 1");
    options.fair_share_weights[project] = weight;
  }
  if (config.priority_aging_seconds() > 0) {
    options.priority_aging = std::chrono::seconds(config.priority_aging_seconds());
  }
  // The computeClusters/* records of the environment service, when there is one.
  ClusterDirectory::Options directory_options;
  if (const auto* env = host.Peer("environment")) {
    directory_options.environment_address = env->address();
  }
  if (credentials != nullptr) directory_options.permission_address = permission.address();
  directory_options.state_dir = absl::StrCat(local.root_dir, "/clusters");
  if (config.cluster_sync_interval_ms() > 0) {
    directory_options.interval = std::chrono::milliseconds(config.cluster_sync_interval_ms());
  }
  // Backends built from records later wake the control loop (made further down). Shared, so it
  // outlives every backend holding it whatever the order of destruction.
  auto wake_loop = std::make_shared<std::function<void()>>();
  directory_options.on_backend = [wake_loop](compute::Backend* backend) {
    backend->OnChange([wake_loop] {
      if (*wake_loop) (*wake_loop)();
    });
  };
  auto* directory = host.Make<ClusterDirectory>(clusters, directory_options);
  options.capacity_of = [directory](const std::string& cluster) {
    return directory->Capacity(cluster);
  };
  auto* controller = host.Make<Controller>(&host.pool(), clusters, quota, host.clock(), options);
  auto interval = config.control_interval_ms()
                      ? std::chrono::milliseconds(config.control_interval_ms())
                      : kDefaultControlInterval;
  auto* loop =
      host.AddLeaderLoop("controller", interval, [controller] { return controller->RunOnce(); });
  *wake_loop = [loop] { loop->Wake(); };
  // A cluster that can tell when its workloads change wakes the loop at once.
  for (const auto& [name, backend] : clusters->all()) backend->OnChange([loop] { loop->Wake(); });

  ExperimentManager::Deps deps{&host.pool(),  &host.authorizer(), &host.idempotency(),
                               &host.clock(), &host.ids(),        clusters,
                               controller,    directory,          [loop] { loop->Wake(); },
                               nullptr};
  if (const auto* env = host.Peer("environment"))
    deps.lookup_environment = EnvironmentLookup(env->address());
  if (credentials != nullptr) {
    deps.check_credential = CredentialChecker(permission.address());
    deps.default_cluster = DefaultClusterLookup(permission.address());
  }
  auto* manager = host.Make<ExperimentManager>(std::move(deps));
  host.AddTask(directory);
  host.Serve<ExperimentServiceImpl>(manager);
  host.Serve<SubmarineExperimentApiImpl>(manager);
  host.CountInProject("experiments", &ExperimentStore::CountInProject);
  return absl::OkStatus();
}

}  // namespace submarine::experiment
