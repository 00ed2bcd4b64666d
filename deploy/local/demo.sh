#!/usr/bin/env bash
# Demo of the embedded local stack: start it, log in as admin with the password it generated,
# create users alice and bob in two teams with a project each, and show that bob cannot see
# alice's environment until she grants him read access. Then quotas, API tokens (CLI, curl, the
# Python SDK), a real training run as an experiment, the Apache Submarine compatible face and the
# audit log. Leaves the stack running.
#
#   BUILD_DIR=build deploy/local/demo.sh        # after: cmake --build build
#
# Environment: BUILD_DIR (default "build", relative to the repository root), DATA_DIR (default:
# the CLI's default data dir), GATEWAY_PORT (default 8080; 0 = any free port).
#
# The demo keeps its own logins (one credentials file per user) in a temporary directory, so it
# never touches ~/.config/submarine. Passwords go to the CLI on standard input, never as arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
SUBMARINE="$BUILD_DIR/bin/submarine"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
DATA_ARGS=()
if [[ -n "${DATA_DIR:-}" ]]; then DATA_ARGS=(--data-dir "$DATA_DIR"); fi
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

for bin in submarine submarine-eventbus submarine-permission submarine-environment \
  submarine-experiment submarine-task-supervisor submarine-gateway; do
  if [[ ! -x "$BUILD_DIR/bin/$bin" ]]; then
    echo "missing $BUILD_DIR/bin/$bin; build first: cmake --build $BUILD_DIR" >&2
    exit 1
  fi
done

DEMO_HOME="$(mktemp -d -t submarine-demo.XXXXXX)"
chmod 700 "$DEMO_HOME"
trap 'rm -rf "$DEMO_HOME"' EXIT
unset SUBMARINE_TOKEN

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }
# as USER CMD...: runs a command logged in as USER (their own credentials file).
as() {
  local user="$1"
  shift
  printf '[%s]' "$user"
  show env SUBMARINE_CONFIG_DIR="$DEMO_HOME/$user" "$@"
}
# expect_failure CMD...: runs a command that must fail, and shows its error.
expect_failure() {
  if "$@"; then
    echo "UNEXPECTED: that should have been refused" >&2
    exit 1
  fi
  echo "(refused, as expected)"
}
# ensure CMD...: runs a creating command; "already exists" (a re-run of the demo) is fine.
ensure() {
  local out
  if out="$("$@" 2>&1)"; then
    echo "$out"
  elif grep -q ALREADY_EXISTS <<<"$out"; then
    echo "$out" | head -1
    echo "(exists already: fine on a re-run)"
  else
    echo "$out" >&2
    return 1
  fi
}
json_field() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
new_password() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
# login USER PASSWORD: logs USER in for `as USER ...` (the password goes on standard input).
login() {
  printf '[%s]$ submarine login -u %s --password-stdin <<< "***"\n' "$1" "$1"
  printf '%s\n' "$2" |
    SUBMARINE_CONFIG_DIR="$DEMO_HOME/$1" "$SUBMARINE" login -u "$1" --password-stdin
}

step "Start the local stack (PostgreSQL, event bus, permission, environment and experiment services, gateway)"
show "$SUBMARINE" local up "${DATA_ARGS[@]}" --gateway-port "$GATEWAY_PORT"
STATUS_JSON="$("$SUBMARINE" local status "${DATA_ARGS[@]}" -o json)"
SUBMARINE_SERVER="$(json_field gatewayUrl <<<"$STATUS_JSON")"
STACK_DIR="$(json_field dataDir <<<"$STATUS_JSON")"
export SUBMARINE_SERVER
API="$SUBMARINE_SERVER"
echo "gateway: $API"

step "Nothing works without logging in"
show curl -sS "$API/v1/projects/default/environments"
echo
expect_failure as nobody "$SUBMARINE" environment list

step "Log in as admin with the generated password ($STACK_DIR/secrets/admin.password)"
ADMIN_PASSWORD="$(cat "$STACK_DIR/secrets/admin.password")"
login admin "$ADMIN_PASSWORD"
as admin "$SUBMARINE" whoami
ls -l "$DEMO_HOME/admin/credentials"

step "Users alice and bob, teams vision and nlp, one project per team"
ALICE_PASSWORD="$(new_password)"
BOB_PASSWORD="$(new_password)"
printf '%s\n' "$ALICE_PASSWORD" | ensure as admin "$SUBMARINE" user create alice \
  --display-name "Alice" --email alice@example.com --password-stdin
printf '%s\n' "$BOB_PASSWORD" | ensure as admin "$SUBMARINE" user create bob \
  --display-name "Bob" --email bob@example.com --password-stdin
# On a re-run the users exist with older passwords: the admin resets them (quietly).
for user in alice bob; do
  password="$ALICE_PASSWORD"
  [[ "$user" == bob ]] && password="$BOB_PASSWORD"
  printf '%s\n' "$password" | SUBMARINE_CONFIG_DIR="$DEMO_HOME/admin" \
    "$SUBMARINE" user set-password "$user" --password-stdin >/dev/null
done
ensure as admin "$SUBMARINE" team create vision --display-name "Team vision"
ensure as admin "$SUBMARINE" team create nlp --display-name "Team nlp"
as admin "$SUBMARINE" team add-member vision alice --role maintainer
as admin "$SUBMARINE" team add-member nlp bob --role maintainer
ensure as admin "$SUBMARINE" project create vision-lab --owner teams/vision \
  --display-name "Vision lab"
ensure as admin "$SUBMARINE" project create nlp-lab --owner teams/nlp --display-name "NLP lab"
as admin "$SUBMARINE" user list
as admin "$SUBMARINE" team members vision

step "alice creates an environment in her team's project"
login alice "$ALICE_PASSWORD"
login bob "$BOB_PASSWORD"
ensure as alice "$SUBMARINE" environment create --project vision-lab \
  -f "$ROOT/deploy/local/examples/environment.yaml"
as alice "$SUBMARINE" environment list --project vision-lab

# On a re-run, the grant the last run gave bob goes first, so that he is refused again.
ENV_RESOURCE=projects/vision-lab/environments/notebook-py311
for grant in $(SUBMARINE_CONFIG_DIR="$DEMO_HOME/alice" "$SUBMARINE" grant list "$ENV_RESOURCE" \
  -o json | "$PYTHON" -c 'import json, sys
for g in json.load(sys.stdin):
    if g.get("subject") == "users/bob": print(g["name"])'); do
  SUBMARINE_CONFIG_DIR="$DEMO_HOME/alice" "$SUBMARINE" grant delete "$grant" >/dev/null
  # The services' cached answers are invalidated by the revocation's event, within seconds.
  for _ in $(seq 1 100); do
    SUBMARINE_CONFIG_DIR="$DEMO_HOME/bob" "$SUBMARINE" environment get notebook-py311 \
      --project vision-lab >/dev/null 2>&1 || break
    sleep 0.1
  done
done

step "bob cannot see it: 403 whether or not it exists, and vision-lab is not among his projects"
expect_failure as bob "$SUBMARINE" environment get notebook-py311 --project vision-lab
expect_failure as bob "$SUBMARINE" environment get no-such-env --project vision-lab
as bob "$SUBMARINE" project list

step "alice grants bob read access to that one environment; now he sees it"
as alice "$SUBMARINE" grant create projects/vision-lab/environments/notebook-py311 users/bob \
  --permission read
as alice "$SUBMARINE" grant list projects/vision-lab/environments/notebook-py311
# The services' cached answers are invalidated by the grant's event, within a few seconds.
for _ in $(seq 1 100); do
  SUBMARINE_CONFIG_DIR="$DEMO_HOME/bob" "$SUBMARINE" environment get notebook-py311 \
    --project vision-lab >/dev/null 2>&1 && break
  sleep 0.1
done
as bob "$SUBMARINE" environment get notebook-py311 --project vision-lab
as bob "$SUBMARINE" environment list --project vision-lab
expect_failure as bob "$SUBMARINE" environment delete notebook-py311 --project vision-lab

step "Quotas: the admin limits team vision; usage against the limits"
as admin "$SUBMARINE" quota set teams/vision --gpus 4 --cpu-millis 32000 --notebooks 10
as alice "$SUBMARINE" quota get teams/vision
expect_failure as alice "$SUBMARINE" quota set teams/vision --gpus 100

step "API tokens for scripts and CI: created once, used as SUBMARINE_TOKEN, revocable"
TOKEN_JSON="$(SUBMARINE_CONFIG_DIR="$DEMO_HOME/alice" "$SUBMARINE" token create \
  --display-name demo-ci --ttl 1h -o json)"
ALICE_TOKEN="$(json_field secret <<<"$TOKEN_JSON")"
TOKEN_NAME="$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["token"]["name"])' \
  <<<"$TOKEN_JSON")"
echo "created $TOKEN_NAME (the token is printed once by 'submarine token create')"
as alice "$SUBMARINE" token list
printf '$ SUBMARINE_TOKEN=*** submarine environment list --project vision-lab\n'
SUBMARINE_TOKEN="$ALICE_TOKEN" SUBMARINE_CONFIG_DIR="$DEMO_HOME/none" \
  "$SUBMARINE" environment list --project vision-lab
printf '$ curl -H "Authorization: Bearer ***" %s/v1/users:me\n' "$API"
curl -sS -H "Authorization: Bearer $ALICE_TOKEN" "$API/v1/users:me"
echo

step "The Python SDK with the token (PYTHONPATH=clients/python)"
printf '$ %s\n' "$PYTHON -c 'from submarine import Client; ...'"
SUBMARINE_TOKEN="$ALICE_TOKEN" PYTHONPATH="$ROOT/clients/python" "$PYTHON" - <<'PY'
from submarine import Client, PermissionDenied

client = Client(project="vision-lab")  # $SUBMARINE_SERVER, token from $SUBMARINE_TOKEN
print("I am", client.whoami().name)  # typed resources (dataclasses)
for env in client.environments.list():
    print(f"{env.name:<50} {env.image}")
print("my projects:", [p.name for p in client.projects.list()])
try:
    client.projects.delete("nlp-lab")
except PermissionDenied as e:
    print("expected error:", e)
PY

step "Revoking the token shuts it out within seconds"
as alice "$SUBMARINE" token revoke "$TOKEN_NAME"
for _ in $(seq 1 50); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ALICE_TOKEN" \
    "$API/v1/users:me")"
  [[ "$code" == 401 ]] && break
  sleep 0.2
done
echo "GET /v1/users:me with the revoked token: HTTP $code"

step "alice trains a model as an experiment (scikit-learn on Iris), followed to the end"
cat >"$DEMO_HOME/experiment-iris.yaml" <<EOF2
# Apache Submarine's ExperimentSpec vocabulary; args is an argv list (cmd would be a shell string).
meta:
  name: iris
  framework: plain
  args: [$PYTHON, $ROOT/deploy/local/examples/train_iris.py]
  envVars: {N_ESTIMATORS: "50"}
spec:
  Worker: {replicas: 1, resources: "cpu=1,memory=1Gi"}
EOF2
cat "$DEMO_HOME/experiment-iris.yaml"
as alice "$SUBMARINE" experiment run -f "$DEMO_HOME/experiment-iris.yaml" --project vision-lab \
  --follow
as alice "$SUBMARINE" experiment list --project vision-lab

echo "bob has no role in vision-lab: he sees none of its experiments"
as bob "$SUBMARINE" experiment list --project vision-lab

step "A distributed job: two PyTorch replicas (gloo on CPU) averaging gradients with DDP"
cat >"$DEMO_HOME/experiment-ddp.yaml" <<EOF2
meta:
  name: ddp
  framework: pytorch          # the platform sets MASTER_ADDR/PORT, WORLD_SIZE and RANK
  args: [$PYTHON, $ROOT/deploy/local/examples/train_ddp.py]
spec:
  Master: {replicas: 1, resources: "cpu=1,memory=1Gi"}
  Worker: {replicas: 1, resources: "cpu=1,memory=1Gi"}
EOF2
cat "$DEMO_HOME/experiment-ddp.yaml"
DDP_ID="ddp-$(date +%s)"
as alice "$SUBMARINE" experiment run -f "$DEMO_HOME/experiment-ddp.yaml" --project vision-lab \
  --id "$DDP_ID" --follow
as alice "$SUBMARINE" experiment logs "$DDP_ID" --project vision-lab --task worker-0

step "The Apache Submarine compatible face: /api/auth/login, /api/sys/user/info, /api/v1/environment"
APACHE_TOKEN="$(printf '{"username":"alice","password":"%s"}' "$ALICE_PASSWORD" |
  curl -sS -X POST "$API/api/auth/token" -H 'Content-Type: application/json' -d @- |
  json_field result)"
printf '$ curl -H "Authorization: Bearer ***" %s/api/sys/user/info\n' "$API"
curl -sS -H "Authorization: Bearer $APACHE_TOKEN" "$API/api/sys/user/info"
echo
printf '$ curl -H "User-Agent: OpenAPI-Generator/0.9.0-SNAPSHOT/python" %s/api/v1/environment\n' \
  "$API"
curl -sS -H "User-Agent: OpenAPI-Generator/0.9.0-SNAPSHOT/python" "$API/api/v1/environment"
echo "   <- no User-Agent bypass"

step "The audit log (admins)"
as admin "$SUBMARINE" audit list --since 1h --limit 15

step "Status"
show "$SUBMARINE" local status "${DATA_ARGS[@]}"

cat <<EOF2

The stack keeps running at $API. Log in yourself with:
  $SUBMARINE login -u admin          # password in $STACK_DIR/secrets/admin.password
  stop:  $SUBMARINE local down ${DATA_ARGS[*]}
EOF2
