#include "clients/cli/credentials.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace fs = std::filesystem;
namespace {

// Creates the parent directory of `path` (0700) if it is missing. An existing directory (say
// $HOME) keeps its mode.
absl::Status EnsureParentDirectory(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) return absl::OkStatus();
  std::error_code ec;
  bool created = fs::create_directories(dir, ec);
  if (ec) return Internal(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  if (created && ::chmod(dir.c_str(), 0700) != 0) {
    return Internal(absl::StrCat("cannot chmod ", dir.string(), ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string CredentialsDir(const char* config_dir_env, const char* home) {
  if (config_dir_env != nullptr && config_dir_env[0] != '\0') return config_dir_env;
  return absl::StrCat(home != nullptr ? home : "", "/.config/submarine");
}

std::string DefaultCredentialsPath() {
  return CredentialsDir(std::getenv("SUBMARINE_CONFIG_DIR"), std::getenv("HOME")) + "/credentials";
}

nlohmann::json CredentialsToJson(const Credentials& c) {
  return {{"gateway", c.gateway},
          {"username", c.username},
          {"access_token", c.access_token},
          {"refresh_token", c.refresh_token},
          {"expires_at", c.expires_at}};
}

absl::StatusOr<Credentials> CredentialsFromJson(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("access_token") || !json["access_token"].is_string()) {
    return InvalidField("credentials", "not a credentials object (no access_token)");
  }
  auto text = [&json](const char* key) {
    return json.contains(key) && json[key].is_string() ? json[key].get<std::string>()
                                                       : std::string();
  };
  Credentials c;
  c.gateway = text("gateway");
  c.username = text("username");
  c.access_token = text("access_token");
  c.refresh_token = text("refresh_token");
  if (json.contains("expires_at") && json["expires_at"].is_number_integer()) {
    c.expires_at = json["expires_at"].get<int64_t>();
  }
  return c;
}

absl::StatusOr<Credentials> ReadCredentials(const std::string& path) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, config::ReadFile(path));
  auto credentials =
      CredentialsFromJson(nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false));
  if (!credentials.ok()) {
    return InvalidField("credentials",
                        absl::StrCat(path, " is not a credentials file; run `submarine login`"));
  }
  return credentials;
}

absl::Status WriteCredentials(const std::string& path, const Credentials& credentials) {
  SUBMARINE_RETURN_IF_ERROR(EnsureParentDirectory(path));
  return config::WriteFileAtomic(path, CredentialsToJson(credentials).dump(2) + "\n", 0600);
}

absl::Status RemoveCredentials(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Internal(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<CredentialsLock> CredentialsLock::Acquire(const std::string& credentials_path) {
  SUBMARINE_RETURN_IF_ERROR(EnsureParentDirectory(credentials_path));
  std::string path = credentials_path + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Internal(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  CredentialsLock lock(fd);
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Internal(absl::StrCat("cannot lock ", path, ": ", std::strerror(errno)));
  return lock;
}

CredentialsLock::CredentialsLock(CredentialsLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

CredentialsLock& CredentialsLock::operator=(CredentialsLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

// Closing the only descriptor of the open file releases the lock.
CredentialsLock::~CredentialsLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace submarine::cli
