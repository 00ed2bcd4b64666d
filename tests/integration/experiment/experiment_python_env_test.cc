// An environment profile's pip dependencies on the local cluster: the experiment service reads
// the profile from the environment service when the experiment is submitted (both real
// processes on real PostgreSQL), and each task runs in a virtualenv holding them, built by the
// first task that needs it (pip installs a wheel this test builds, from a local directory: there
// is no index here) and shared by the others. What the local cluster cannot honour (an image,
// conda dependencies) is said in the experiment's warnings.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/integration/experiment/experiment_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::experiment::v1;
namespace env = submarine::environment::v1;

// Prints the package's value and where Python runs from (the virtualenv's prefix).
constexpr char kUseThePackage[] =
    "python -c 'import sys, submarine_tiny; print(submarine_tiny.VALUE, sys.prefix)'";

class ExperimentPythonEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("experiment-python-env");
    wheels_ = dir_ + "/wheels";
    venvs_ = dir_ + "/venvs";
    const std::string make_wheel =
        absl::StrCat("/usr/bin/python3 ", SUBMARINE_SOURCE_DIR, "/tests/support/make_wheel.py ",
                     wheels_, " submarine_tiny 1.0 'VALUE = 42' > /dev/null");
    ASSERT_EQ(std::system(make_wheel.c_str()), 0) << make_wheel;
    auto both = StartExperimentWithEnvironment(
        dir_, absl::StrCat("python_env_dir: ", venvs_, "\npip_find_links: ", wheels_, "\n"));
    ASSERT_TRUE(both.ok()) << both.status();
    env_ = std::move(both->env);
    svc_ = std::move(both->svc);
    environments_ = env::EnvironmentService::NewStub(env_->channel);
  }

  grpc::Status CreateProfile(const std::string& id, const std::vector<std::string>& pip,
                             const std::vector<std::string>& conda = {},
                             const std::string& image = "python:3.11") {
    env::CreateEnvironmentRequest req;
    req.set_parent("projects/p");
    req.set_environment_id(id);
    req.mutable_environment()->set_image(image);
    for (const auto& d : pip)
      req.mutable_environment()->mutable_kernel_spec()->add_pip_dependencies(d);
    for (const auto& d : conda) {
      req.mutable_environment()->mutable_kernel_spec()->add_conda_dependencies(d);
    }
    env::Environment out;
    return environments_->CreateEnvironment(Ctx().get(), req, &out);
  }

  static v1::Experiment In(const std::string& profile, const std::string& cmd) {
    v1::Experiment e;
    e.mutable_spec()->mutable_meta()->set_name("python-env");
    e.mutable_spec()->mutable_meta()->set_cmd(cmd);
    e.mutable_spec()->mutable_environment()->set_name(profile);
    (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(1);
    return e;
  }

  std::string dir_, wheels_, venvs_;
  std::unique_ptr<EnvironmentProcess> env_;
  std::unique_ptr<env::EnvironmentService::Stub> environments_;
  std::unique_ptr<ExperimentProcess> svc_;
};

TEST_F(ExperimentPythonEnvTest, TasksRunInTheProfilesVirtualenvBuiltOnceAndShared) {
  ASSERT_TRUE(CreateProfile("tiny", {"submarine-tiny==1.0"}, {"numpy=1.26"}).ok());
  // Two experiments at once: the second task waits for the first one's build and reuses it.
  v1::Experiment a, b;
  ASSERT_TRUE(CreateExperimentIn(*svc_, In("tiny", kUseThePackage), &a).ok());
  // The same list given inline (no profile) is the same virtualenv.
  v1::Experiment inline_spec = In("", kUseThePackage);
  inline_spec.mutable_spec()->mutable_environment()->add_pip_dependencies("submarine-tiny==1.0");
  ASSERT_TRUE(CreateExperimentIn(*svc_, inline_spec, &b).ok());
  v1::Experiment done_a = WaitExperimentFinal(*svc_, a.name());
  v1::Experiment done_b = WaitExperimentFinal(*svc_, b.name());
  const std::string log_a = ExperimentTaskLog(*svc_, a.name(), "worker-0");
  const std::string log_b = ExperimentTaskLog(*svc_, b.name(), "worker-0");
  ASSERT_EQ(done_a.state(), v1::SUCCEEDED) << done_a.state_reason() << "\n" << log_a;
  ASSERT_EQ(done_b.state(), v1::SUCCEEDED) << done_b.state_reason() << "\n" << log_b;

  // One virtualenv under python_env_dir, used by both.
  std::vector<std::string> built;
  for (const auto& entry : std::filesystem::directory_iterator(venvs_)) {
    if (entry.is_directory()) built.push_back(entry.path().string());
  }
  ASSERT_EQ(built.size(), 1u);
  EXPECT_TRUE(absl::StrContains(log_a, absl::StrCat("42 ", built[0], "\n"))) << log_a;
  EXPECT_TRUE(absl::StrContains(log_b, absl::StrCat("42 ", built[0], "\n"))) << log_b;
  const int builds = absl::StrContains(log_a, "building the Python environment") +
                     absl::StrContains(log_b, "building the Python environment");
  EXPECT_EQ(builds, 1) << log_a << "\n----\n" << log_b;

  // The profile as it was is in the resolved spec, and what the host cannot do is said.
  const auto& resolved = done_a.reproducibility().resolved_spec().environment();
  EXPECT_EQ(resolved.name(), "projects/p/environments/tiny");
  EXPECT_EQ(resolved.image(), "python:3.11");
  ASSERT_EQ(resolved.pip_dependencies_size(), 1);
  EXPECT_EQ(resolved.pip_dependencies(0), "submarine-tiny==1.0");
  std::string warnings;
  for (const auto& w : done_a.warnings()) warnings += w + "\n";
  EXPECT_TRUE(absl::StrContains(warnings, "image python:3.11 is not used on the local cluster"))
      << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, "conda dependencies (numpy=1.26) are not installed"))
      << warnings;
  EXPECT_EQ(done_b.warnings_size(), 0);
}

TEST_F(ExperimentPythonEnvTest, ADependencyPipCannotFindFailsTheTaskSayingSo) {
  ASSERT_TRUE(CreateProfile("missing", {"no-such-package==9.9"}).ok());
  v1::Experiment e;
  ASSERT_TRUE(CreateExperimentIn(*svc_, In("missing", "true"), &e).ok());
  v1::Experiment done = WaitExperimentFinal(*svc_, e.name());
  const std::string log = ExperimentTaskLog(*svc_, e.name(), "worker-0");
  EXPECT_EQ(done.state(), v1::FAILED) << log;
  EXPECT_TRUE(absl::StrContains(log, "no-such-package")) << log;
  EXPECT_TRUE(absl::StrContains(log, "pip could not install the environment's dependencies"))
      << log;
  // Nothing half-built is left to be mistaken for a ready virtualenv.
  for (const auto& entry : std::filesystem::directory_iterator(venvs_)) {
    EXPECT_FALSE(entry.is_directory()) << entry.path();
  }
}

TEST_F(ExperimentPythonEnvTest, AProfileWithAnOptionForADependencyIsRefusedNamingIt) {
  ASSERT_TRUE(CreateProfile("sneaky", {"--index-url=http://example.invalid/"}).ok());
  v1::Experiment out;
  grpc::Status st = CreateExperimentIn(*svc_, In("sneaky", "true"), &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "experiment.spec.environment.name") << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "is an option, not a requirement spec"))
      << st.error_message();
}

}  // namespace
}  // namespace submarine::testing
