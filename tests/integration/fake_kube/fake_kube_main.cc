// submarine-fake-kube: the fake Kubernetes API server as a process, for trying a client (kubectl,
// the Submarine backend) against it by hand. Prints the kubeconfig path and runs until SIGINT or
// SIGTERM.
//   submarine-fake-kube [--trainer] [--kueue] [--no-pods] [--distinct-pod-ips] [--metrics]
//                       [--token T] [--dir DIR]

#include <signal.h>

#include <cstring>
#include <iostream>
#include <string>

#include "tests/support/fake_kube/fake_kube_apiserver.h"
#include "tests/support/process.h"

int main(int argc, char** argv) {
  submarine::testing::FakeKubeOptions options;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--trainer") {
      options.serve_trainer = true;
    } else if (arg == "--kueue") {
      options.serve_kueue = true;
    } else if (arg == "--no-pods") {
      options.run_pods = false;
    } else if (arg == "--metrics") {
      options.serve_metrics = true;
    } else if (arg == "--distinct-pod-ips") {
      options.distinct_pod_ips = true;
    } else if (arg == "--token" && i + 1 < argc) {
      options.bearer_token = argv[++i];
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::cerr << "usage: submarine-fake-kube [--trainer] [--kueue] [--no-pods] "
                   "[--distinct-pod-ips] [--metrics] [--token T] [--dir DIR]\n";
      return 2;
    }
  }
  if (dir.empty()) dir = submarine::testing::MakeTempDir("fake-kube");
  options.work_dir = dir;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // taken by sigwait below, in every thread
  auto server = submarine::testing::FakeKubeApiServer::Start(options);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::string kubeconfig = dir + "/kubeconfig";
  if (auto s = (*server)->WriteKubeconfig(kubeconfig); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::cout << "serving " << (*server)->url() << "\nkubeconfig " << kubeconfig << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
