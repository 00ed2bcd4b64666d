#!/usr/bin/env bash
# Installs everything Submarine needs to build, test and run its embedded local stack, from
# Debian 12's own package archive and nowhere else. Idempotent: packages already present are
# skipped, and `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build ccache pkg-config git
  lld  # links in a fifth of GNU ld's time (CMakeLists.txt, SUBMARINE_LLD)
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libzmq3-dev cppzmq-dev libpqxx-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libyaml-cpp-dev
  libboost-dev libboost-system-dev libsodium-dev libssl-dev libcurl4-openssl-dev libcli11-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev
  golang-github-gogo-googleapis-dev
  postgresql postgresql-client
  python3 curl procps psmisc
  python3-yaml     # the SDK reads YAML experiment specs
  python3-venv     # local tasks with pip dependencies run in a virtualenv (python3 -m venv)
  python3-sklearn  # the demo's training experiment (deploy/local/examples/train_iris.py)
  python3-torch    # the distributed example (deploy/local/examples/train_ddp.py, gloo on CPU)
  gdb  # tests print the stacks of a process that hangs instead of exiting
)

# kubectl: the outside client of the fake Kubernetes API server's conformance test
# (tests/integration/fake_kube). Debian's kubernetes-client only when none is on PATH already
# (a newer kubectl, e.g. from the Google Cloud SDK, is kept).
if ! command -v kubectl >/dev/null 2>&1; then
  PACKAGES+=(kubernetes-client)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
