#include "common/api/field_mask.h"

#include <gtest/gtest.h>

#include "common/status/status.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::api {
namespace {

using submarine::environment::v1::Environment;

const std::set<std::string> kUpdatable = {"display_name", "image", "kernel_spec",
                                          "kernel_spec.pip_dependencies", "labels"};

TEST(UpdatePaths, AcceptsSnakeAndCamelCaseExpandsStarAndFallsBackToImplicit) {
  google::protobuf::FieldMask mask;
  mask.add_paths("displayName");
  mask.add_paths("kernelSpec.pipDependencies");
  auto paths = UpdatePaths(mask, kUpdatable);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_EQ(*paths, (std::vector<std::string>{"display_name", "kernel_spec.pip_dependencies"}));

  google::protobuf::FieldMask star;
  star.add_paths("*");
  auto all = UpdatePaths(star, kUpdatable);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"display_name", "image", "kernel_spec", "labels"}));

  auto implicit = UpdatePaths(google::protobuf::FieldMask(), kUpdatable, {"image"});
  ASSERT_TRUE(implicit.ok());
  EXPECT_EQ(*implicit, std::vector<std::string>{"image"});
}

TEST(UpdatePaths, RefusesOutputOnlyAndUnknownPathsNamingTheMaskWithAShortQuote) {
  for (const std::string& path : {std::string("name"), std::string("etag"), std::string("nope"),
                                  std::string(4000, 'x')}) {
    google::protobuf::FieldMask mask;
    mask.add_paths(path);
    auto paths = UpdatePaths(mask, kUpdatable);
    ASSERT_FALSE(paths.ok()) << path;
    EXPECT_EQ(paths.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(Message(paths.status()).find("update_mask"), std::string::npos);
    EXPECT_LT(Message(paths.status()).size(), 400u) << "the path is quoted, not echoed whole";
  }
}

TEST(ApplyPaths, ReplacesWholeFieldsAndSubFieldsOnly) {
  Environment stored;
  stored.set_name("projects/p/environments/e");
  stored.set_display_name("old");
  stored.set_image("python:3.10");
  stored.mutable_kernel_spec()->set_name("py3");
  stored.mutable_kernel_spec()->add_pip_dependencies("numpy");
  (*stored.mutable_labels())["a"] = "1";
  Environment in;
  in.set_display_name("new");
  in.mutable_kernel_spec()->add_pip_dependencies("pandas");
  (*in.mutable_labels())["b"] = "2";
  ApplyPaths({"display_name", "kernel_spec.pip_dependencies", "labels"}, in, &stored);
  EXPECT_EQ(stored.name(), "projects/p/environments/e");
  EXPECT_EQ(stored.display_name(), "new");
  EXPECT_EQ(stored.image(), "python:3.10");
  EXPECT_EQ(stored.kernel_spec().name(), "py3");
  ASSERT_EQ(stored.kernel_spec().pip_dependencies_size(), 1);
  EXPECT_EQ(stored.kernel_spec().pip_dependencies(0), "pandas");
  EXPECT_EQ(stored.labels().size(), 1u);
  EXPECT_EQ(stored.labels().at("b"), "2");
}

}  // namespace
}  // namespace submarine::api
