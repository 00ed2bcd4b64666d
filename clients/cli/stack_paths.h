#pragma once
// Where the embedded local stack keeps its files. Every path derives from one data directory:
//
//   <data-dir>/state.json             written by the supervisor (see stack_state.h)
//   <data-dir>/config/<process>.yaml  each process' typed config
//   <data-dir>/secrets/<role>.password  generated database passwords (0600)
//   <data-dir>/secrets/gateway.secret   the internal secret the gateway and services sign the
//                                       caller's identity with (0600, created by the supervisor)
//   <data-dir>/secrets/admin.password   the first admin password (0600, written by the permission
//                                       service on its first start); signing.key and master.key
//                                       (0600, created by the permission service)
//   <data-dir>/run/<process>.ready    ready files written by the processes
//   <data-dir>/logs/<process>.log     stdout+stderr of each process (and supervisor.log)
//   <data-dir>/postgres/              the PostgreSQL cluster (pgdata/, run/, postgres.log)

#include <string>

#include "absl/status/statusor.h"

namespace submarine::cli {

class StackPaths {
 public:
  explicit StackPaths(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  const std::string& data_dir() const { return data_dir_; }
  std::string StateFile() const { return data_dir_ + "/state.json"; }
  std::string ConfigDir() const { return data_dir_ + "/config"; }
  std::string SecretsDir() const { return data_dir_ + "/secrets"; }
  std::string RunDir() const { return data_dir_ + "/run"; }
  std::string LogDir() const { return data_dir_ + "/logs"; }
  std::string PostgresDir() const { return data_dir_ + "/postgres"; }
  // Workloads of the local compute cluster: their working directories and logs.
  std::string ComputeDir() const { return data_dir_ + "/compute"; }

  std::string ConfigFile(const std::string& process) const;
  std::string ReadyFile(const std::string& process) const;
  std::string LogFile(const std::string& process) const;
  std::string PasswordFile(const std::string& role) const;
  std::string GatewaySecretFile() const { return SecretsDir() + "/gateway.secret"; }
  std::string AdminPasswordFile() const { return SecretsDir() + "/admin.password"; }
  // Exists once `local up` has shown the admin password, which it then shows only by path.
  std::string AdminPasswordShownFile() const { return SecretsDir() + "/admin.password.shown"; }
  std::string SigningKeyFile() const { return SecretsDir() + "/signing.key"; }
  std::string MasterKeyFile() const { return SecretsDir() + "/master.key"; }

  // Creates the data directory and its subdirectories. The data directory gets mode 0711 so the
  // unprivileged `postgres` user (used when running as root) can traverse it to its own cluster
  // directory; secrets/ is 0700.
  absl::Status CreateDirectories() const;

 private:
  std::string data_dir_;
};

// The default data directory: /var/lib/submarine for root, else $XDG_DATA_HOME/submarine, else
// $HOME/.local/share/submarine.
std::string DefaultDataDir();

// Makes `dir` absolute (relative to the current directory) without requiring it to exist.
std::string AbsolutePath(const std::string& dir);

// The directory holding this executable (resolved from /proc/self/exe); the sibling process
// binaries (submarine-eventbus, submarine-environment, submarine-gateway) are looked up there.
absl::StatusOr<std::string> SelfBinDir();

}  // namespace submarine::cli
