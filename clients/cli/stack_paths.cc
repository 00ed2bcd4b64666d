#include "clients/cli/stack_paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace fs = std::filesystem;

std::string StackPaths::ConfigFile(const std::string& process) const {
  return absl::StrCat(ConfigDir(), "/", process, ".yaml");
}

std::string StackPaths::ReadyFile(const std::string& process) const {
  return absl::StrCat(RunDir(), "/", process, ".ready");
}

std::string StackPaths::LogFile(const std::string& process) const {
  return absl::StrCat(LogDir(), "/", process, ".log");
}

std::string StackPaths::PasswordFile(const std::string& role) const {
  return absl::StrCat(SecretsDir(), "/", role, ".password");
}

absl::Status StackPaths::CreateDirectories() const {
  std::error_code ec;
  for (const std::string& dir : {data_dir_, ConfigDir(), SecretsDir(), RunDir(), LogDir()}) {
    fs::create_directories(dir, ec);
    if (ec) return Internal(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  if (::chmod(data_dir_.c_str(), 0711) != 0 || ::chmod(SecretsDir().c_str(), 0700) != 0) {
    return Internal(absl::StrCat("cannot set the permissions of ", data_dir_));
  }
  return absl::OkStatus();
}

std::string DefaultDataDir() {
  if (::geteuid() == 0) return "/var/lib/submarine";
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/submarine");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.local/share/submarine");
}

std::string AbsolutePath(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) return dir;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

absl::StatusOr<std::string> SelfBinDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Internal(absl::StrCat("cannot resolve /proc/self/exe: ", ec.message()));
  return exe.parent_path().string();
}

}  // namespace submarine::cli
