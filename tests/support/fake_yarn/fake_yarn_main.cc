// submarine-fake-yarn: the fake ResourceManager (fake_yarn_rm.h) as a program, for trying the
// YARN backend or the experiment service by hand. Prints its URL, runs until SIGINT or SIGTERM.
//
//   submarine-fake-yarn <work_dir> [domain]

#include <signal.h>

#include <cstdio>

#include "tests/support/fake_yarn/fake_yarn_rm.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <work_dir> [domain]\n", argv[0]);
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts
  submarine::testing::FakeYarnOptions options;
  options.work_dir = argv[1];
  if (argc > 2) options.domain = argv[2];
  auto rm = submarine::testing::FakeYarnRm::Start(options);
  if (!rm.ok()) {
    std::fprintf(stderr, "%s\n", rm.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", (*rm)->url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
