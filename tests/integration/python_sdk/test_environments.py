"""The Python SDK against a real local stack: login with the first admin password, API tokens,
refusal of unauthenticated calls, users/teams/projects/grants/quotas, and environment CRUD,
pagination, filters, errors, and request ids: a repeat gets the first answer, and a call whose
answer was lost on the way is retried safely.

Needs ``SUBMARINE_BIN_DIR`` (the build's bin/ with ``submarine`` and the process binaries) and
``PYTHONPATH`` containing clients/python; both are set by the ctest registration. Without the
binaries the suite fails (it never skips).
"""

from __future__ import annotations

import http.client
import io
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List, Tuple

from sdk_test_support import LocalStack, bin_dir, close_sdk_connections, wait_for
from submarine import (Client, InvalidArgument, NotFound, PermissionDenied, RetryPolicy,
                       SubmarineError, TeamMember, Unauthenticated)
from submarine.environments import Environments
from submarine._server import resolve_server


class LossyProxy:
    """An HTTP proxy on 127.0.0.1 in front of the gateway that loses answers: the first request
    matching each armed (method, path prefix) is forwarded and executed, then the client's
    connection is reset instead of answered — as when a network drops between server and client.
    Records (method, path, requestId) of everything forwarded."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.split("://", 1)[1].partition(":")
        self.armed: List[Tuple[str, str]] = []
        self.forwarded: List[Tuple[str, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream_conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept")}
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                upstream_conn.close()
                path = self.path.split("?", 1)[0]
                query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&")
                             if "=" in p)
                with proxy._lock:
                    proxy.forwarded.append((self.command, path, query.get("requestId", "")))
                    drop = next((a for a in proxy.armed
                                 if a[0] == self.command and path.startswith(a[1])), None)
                    if drop is not None:
                        proxy.armed.remove(drop)
                if drop is not None:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name in ("Content-Type", "Retry-After"):
                    if answer.getheader(name):
                        self.send_header(name, answer.getheader(name))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the reset connections are the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EnvironmentsTest(unittest.TestCase):
    stack: LocalStack
    data_dir: str = ""
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.stack = LocalStack()
        cls.data_dir = cls.stack.data_dir
        cls.admin_password = cls.stack.admin_password
        cls.client = cls.stack.client

    @classmethod
    def tearDownClass(cls) -> None:
        cls.stack.close()

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def test_ready(self) -> None:
        self.assertTrue(self.client.ready())

    def test_unauthenticated_calls_are_refused(self) -> None:
        anonymous = Client(data_dir=self.data_dir)
        self.assertTrue(anonymous.ready(), "health needs no token")
        with self.assertRaises(Unauthenticated) as ctx:
            list(anonymous.environments.list())
        self.assertEqual(ctx.exception.http_status, 401)
        with self.assertRaises(Unauthenticated):
            Client(data_dir=self.data_dir, token="not-a-token").environments.get("x")
        with self.assertRaises(Unauthenticated):
            anonymous.login("admin", "wrong-password-123")

    def test_api_token_works_until_revoked(self) -> None:
        created = self.client.tokens.create("sdk test", ttl_seconds=3600)
        self.assertTrue(created.secret)
        with_token = Client(data_dir=self.data_dir, token=created.secret)
        self.assertEqual(with_token.whoami().name, "users/admin")
        env_id = self.unique("tok")
        with_token.environments.create(env_id, image="python:3.11")
        self.assertEqual(self.client.environments.get(env_id).image, "python:3.11")
        names = [t.name for t in self.client.tokens.list()]
        self.assertIn(created.token.name, names)
        self.client.tokens.revoke(created.token.name)
        # Revocation reaches the gateway through events within seconds.
        deadline = time.monotonic() + 30
        while True:
            try:
                with_token.environments.get(env_id)
            except Unauthenticated:
                break
            if time.monotonic() > deadline:
                self.fail("a revoked token still works after 30 s")
            time.sleep(0.2)

    def test_users_teams_projects_and_grants(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        alice, bob = f"alice{suffix}", f"bob{suffix}"
        for user in (alice, bob):
            self.client.users.create(user, password=f"pw-{user}-long-enough")
        team = f"team-{suffix}"
        self.client.teams.create(team, display_name="SDK team")
        self.client.teams.add_member(team, alice, "maintainer")
        self.assertIn(TeamMember(user=f"users/{alice}", role="MAINTAINER"),
                      self.client.teams.members(team))
        project = f"proj-{suffix}"
        self.client.projects.create(project, owner=f"teams/{team}")

        as_alice = Client(data_dir=self.data_dir)
        as_alice.login(alice, f"pw-{alice}-long-enough")
        as_bob = Client(data_dir=self.data_dir)
        as_bob.login(bob, f"pw-{bob}-long-enough")
        envs_alice = Environments(as_alice._transport, project)
        envs_bob = Environments(as_bob._transport, project)
        created = envs_alice.create("private", image="python:3.11")
        with self.assertRaises(PermissionDenied):
            envs_bob.get("private")
        self.assertNotIn(f"projects/{project}", [p.name for p in as_bob.projects.list()])

        as_alice.grants.create(created.name, f"users/{bob}", "read")
        # Services cache permission answers; the grant's event invalidates bob's cached denial
        # within seconds.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.assertEqual(envs_bob.get("private").name, created.name)
                break
            except PermissionDenied:
                if time.monotonic() > deadline:
                    self.fail("bob still cannot read the environment 30 s after the grant")
                time.sleep(0.1)
        self.assertEqual([g.subject for g in as_alice.grants.list(created.name)],
                         [f"users/{bob}"])

        usage = self.client.quotas.usage(f"teams/{team}")
        self.assertEqual(usage.owner, f"teams/{team}")
        self.client.quotas.set(f"teams/{team}", gpus=2)
        self.assertEqual(self.client.quotas.usage(f"teams/{team}").limits.gpus, 2)

    def test_a_projects_default_cluster_is_set_checked_and_cleared(self) -> None:
        project = self.unique("dflt")
        created = self.client.projects.create(project, default_compute_cluster="local")
        self.assertEqual(created.default_compute_cluster, "computeClusters/local")
        with self.assertRaises(InvalidArgument) as raised:
            self.client.projects.update(project, default_compute_cluster="No Such")
        self.assertIn("project.default_compute_cluster", str(raised.exception))
        self.assertEqual(self.client.projects.get(project).default_compute_cluster,
                         "computeClusters/local")
        cleared = self.client.projects.update(project, default_compute_cluster="")
        self.assertEqual(cleared.default_compute_cluster, "")

    def test_crud(self) -> None:
        env_id = self.unique("crud")
        created = self.client.environments.create(
            env_id,
            image="apache/submarine:jupyter-notebook-0.8.0",
            display_name="CRUD test",
            description="created by the SDK test",
            kernel_spec={"name": "python3", "channels": ["defaults"],
                         "conda_dependencies": ["numpy=1.26"],
                         "pip_dependencies": ["pandas==2.1.0"]},
            labels={"team": "ml"},
        )
        name = f"projects/default/environments/{env_id}"
        self.assertEqual(created.name, name)
        self.assertEqual(created.kernel_spec.conda_dependencies, ["numpy=1.26"])
        self.assertEqual(created.kernel_spec.pip_dependencies, ["pandas==2.1.0"])
        self.assertTrue(created.etag)
        self.assertTrue(created.uid)

        got = self.client.environments.get(env_id)
        self.assertEqual(got.display_name, "CRUD test")
        self.assertEqual(got.labels, {"team": "ml"})
        self.assertEqual(self.client.environments.get(name).uid, created.uid)

        updated = self.client.environments.update(env_id, etag=got.etag,
                                                  description="changed", labels={"team": "ds"})
        self.assertEqual(updated.description, "changed")
        self.assertEqual(updated.labels, {"team": "ds"})
        self.assertEqual(updated.display_name, "CRUD test", "fields outside the mask stay")
        self.assertNotEqual(updated.etag, got.etag)

        deleted = self.client.environments.delete(env_id)
        self.assertEqual(deleted.name, name)
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.get(env_id)
        self.assertEqual(ctx.exception.status, "NOT_FOUND")

    def test_a_repeated_request_id_gets_the_first_answer(self) -> None:
        env_id = self.unique("replay")
        request_id = str(uuid.uuid4())
        first = self.client.environments.create(env_id, image="python:3.11",
                                                request_id=request_id)
        again = self.client.environments.create(env_id, image="python:3.11",
                                                request_id=request_id)
        self.assertEqual(again, first, "the first answer, not ALREADY_EXISTS")
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.environments.create(env_id, image="python:3.12", request_id=request_id)
        self.assertEqual(ctx.exception.reason, "REQUEST_ID_REUSED")

    def test_calls_whose_answer_was_lost_are_retried_safely(self) -> None:
        proxy = LossyProxy(self.client.server)
        self.addCleanup(proxy.close)
        token = self.client.tokens.create("lossy", ttl_seconds=600).secret
        through_proxy = Client(proxy.url, token=token)
        self.addCleanup(close_sdk_connections)
        env_id = self.unique("lossy")
        collection = "/v1/projects/default/environments"
        proxy.armed = [("POST", collection), ("DELETE", f"{collection}/{env_id}")]

        created = through_proxy.environments.create(env_id, image="python:3.11")
        self.assertEqual(created.name, f"projects/default/environments/{env_id}")
        deleted = through_proxy.environments.delete(env_id)
        self.assertEqual(deleted.uid, created.uid, "the replayed delete, not NOT_FOUND")
        with self.assertRaises(NotFound):
            self.client.environments.get(env_id)

        posts = [f for f in proxy.forwarded if f[0] == "POST"]
        deletes = [f for f in proxy.forwarded if f[0] == "DELETE"]
        self.assertEqual(len(posts), 2, "the lost create was sent again")
        self.assertEqual(len(deletes), 2, "the lost delete was sent again")
        for attempts in (posts, deletes):
            self.assertTrue(attempts[0][2])
            self.assertEqual(attempts[0][2], attempts[1][2], "with the same request id")

    def test_pagination_over_hundreds(self) -> None:
        batch = uuid.uuid4().hex[:12]
        ids = [f"page-{batch}-{i:03d}" for i in range(230)]

        def create(env_id: str) -> None:
            self.client.environments.create(env_id, image="python:3.11",
                                            labels={"batch": batch})

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create, ids))

        listed = list(self.client.environments.list(filter=f'labels.batch = "{batch}"',
                                                    page_size=17))
        names = [e.name for e in listed]
        self.assertEqual(len(names), len(ids))
        self.assertEqual(set(names), {f"projects/default/environments/{i}" for i in ids})

        first = self.client.environments.list_page(filter=f'labels.batch = "{batch}"',
                                                   page_size=100)
        self.assertEqual(len(first.items), 100)
        self.assertTrue(first.next_page_token)
        second = self.client.environments.list_page(filter=f'labels.batch = "{batch}"',
                                                    page_size=100,
                                                    page_token=first.next_page_token)
        self.assertEqual(len(second.items), 100)
        self.assertFalse({e.name for e in first.items} & {e.name for e in second.items})

        newest_first = list(self.client.environments.list(
            filter=f'labels.batch = "{batch}"', order_by="create_time desc", page_size=50))
        self.assertEqual({e.name for e in newest_first}, set(names))
        times = [e.create_time for e in newest_first]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_filter(self) -> None:
        tag = uuid.uuid4().hex[:12]
        a = self.client.environments.create(self.unique("fa"), image="img-a",
                                            labels={"filter": tag, "kind": "a"})
        b = self.client.environments.create(self.unique("fb"), image="img-b",
                                            labels={"filter": tag, "kind": "b"})
        only_a = list(self.client.environments.list(
            filter=f'labels.filter = "{tag}" AND labels.kind = "a"'))
        self.assertEqual([e.name for e in only_a], [a.name])
        by_image = list(self.client.environments.list(
            filter=f'labels.filter = "{tag}" AND image = "img-b"'))
        self.assertEqual([e.name for e in by_image], [b.name])
        both = {e.name for e in self.client.environments.list(
            filter=f'labels.filter = "{tag}"')}
        self.assertEqual(both, {a.name, b.name})

    def test_stale_etag_is_aborted(self) -> None:
        env_id = self.unique("etag")
        created = self.client.environments.create(env_id, image="python:3.11")
        self.client.environments.update(env_id, etag=created.etag, display_name="first")
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.update(env_id, etag=created.etag, display_name="second")
        self.assertEqual(ctx.exception.status, "ABORTED")
        self.assertEqual(ctx.exception.http_status, 409)
        self.assertTrue(ctx.exception.message)
        self.assertEqual(self.client.environments.get(env_id).display_name, "first")

    def test_not_found(self) -> None:
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.get(self.unique("missing"))
        err = ctx.exception
        self.assertEqual(err.status, "NOT_FOUND")
        self.assertEqual(err.http_status, 404)
        self.assertIn("missing-", err.message)
        self.assertIn("NOT_FOUND", str(err))

    def test_duplicate_is_already_exists(self) -> None:
        env_id = self.unique("dup")
        self.client.environments.create(env_id, image="python:3.11")
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.create(env_id, image="python:3.11")
        self.assertEqual(ctx.exception.status, "ALREADY_EXISTS")
        self.assertEqual(ctx.exception.http_status, 409)

    def test_invalid_argument_carries_reason(self) -> None:
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.create(self.unique("noimage"), image="")
        self.assertEqual(ctx.exception.status, "INVALID_ARGUMENT")
        self.assertEqual(ctx.exception.http_status, 400)
        self.assertTrue(ctx.exception.reason, "the ErrorInfo reason is decoded")
        self.assertEqual(ctx.exception.domain, "environment.submarine.io")

    # ---- experiments (the experiment service in the same stack)

    def test_experiment_runs_to_success_and_its_log_reads_back(self) -> None:
        spec = """
meta:
  name: sdk-test
  framework: plain
  cmd: echo "trained   model"; echo "on $SUBMARINE_EXPERIMENT"
spec:
  Worker: {replicas: 1, resources: "cpu=500m,memory=256Mi"}
"""
        created = self.client.experiments.create(spec, labels={"suite": "sdk"})
        self.assertEqual(created.state, "PENDING")
        done = self.client.experiments.wait(created.name, timeout=120)
        self.assertEqual(done.state, "SUCCEEDED", done.state_reason)
        self.assertEqual([h.state for h in done.history],
                         ["PENDING", "ACCEPTED", "CREATED", "RUNNING", "SUCCEEDED"])
        self.assertEqual(done.tasks[0].exit_code, 0)
        self.assertEqual(done.owner, "users/admin")
        log = self.client.experiments.logs(created.name)
        self.assertIn("trained   model\n", log)
        self.assertIn(f"on {created.name}\n", log)
        names = [e.name for e in self.client.experiments.list(filter='labels.suite = "sdk"')]
        self.assertIn(created.name, names)
        self.client.experiments.delete(created.name)
        with self.assertRaises(NotFound):
            self.client.experiments.get(created.name)

    def test_experiment_logs_follow_streams_a_running_task_until_it_ends(self) -> None:
        release = os.path.join(tempfile.mkdtemp(prefix="sdk-follow-"), "release")
        created = self.client.experiments.create(
            {"meta": {"cmd": f"echo first; while [ ! -e '{release}' ]; do sleep 0.05; done; "
                             "echo second"},
             "spec": {"Worker": {}}})
        pieces = self.client.experiments.logs(created.name, follow=True)
        text = ""
        while "first\n" not in text:
            text += next(pieces)  # the task is still waiting for `release`
        open(release, "w").close()
        text += "".join(pieces)  # to the end of the task
        self.assertEqual(text, "first\nsecond\n")
        chunks = list(self.client.experiments.stream_logs(created.name, offset=6))
        self.assertEqual("".join(c.data for c in chunks), "second\n")
        self.assertTrue(chunks[-1].complete)
        # The raw download, to a path and to a file object.
        path = os.path.join(os.path.dirname(release), "worker-0.log")
        self.assertEqual(self.client.experiments.download_log(created.name, path), 13)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"first\nsecond\n")
        buffer = io.BytesIO()
        self.client.experiments.download_log(created.name, buffer, task="worker-0", offset=6)
        self.assertEqual(buffer.getvalue(), b"second\n")
        with self.assertRaises(NotFound):
            self.client.experiments.download_log(created.name, io.BytesIO(), task="ps-3")

    def test_experiment_wait_returns_on_failure_and_stop(self) -> None:
        failed = self.client.experiments.create(
            {"meta": {"cmd": "exit 4"}, "spec": {"Worker": {}}})
        done = self.client.experiments.wait(failed.name, timeout=120)
        self.assertEqual(done.state, "FAILED")
        self.assertEqual(done.tasks[0].exit_code, 4)
        sleeper = self.client.experiments.create(
            {"meta": {"cmd": "exec sleep 600"}, "spec": {"Worker": {}}})
        self.client.experiments.stop(sleeper.name)
        self.assertEqual(self.client.experiments.wait(sleeper.name, timeout=120).state, "KILLED")
        again = self.client.experiments.retry(failed.name)
        self.assertEqual((again.attempt, again.state), (2, "PENDING"))
        self.assertEqual(self.client.experiments.wait(failed.name, timeout=120).state, "FAILED")
        copy = self.client.experiments.clone(failed.name, env_vars={"X": "1"},
                                             labels={"copy": "yes"})
        self.assertEqual(copy.labels, {"copy": "yes"})
        self.assertEqual(copy.spec["meta"]["envVars"], {"X": "1"})

    def test_experiment_bad_spec_names_the_field(self) -> None:
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.experiments.create(
                {"meta": {"framework": "pytorch", "cmd": "true"}, "spec": {"Ps": {}}})
        self.assertIn("experiment.spec.spec", str(ctx.exception))
        self.assertEqual(ctx.exception.domain, "experiment.submarine.io")

    def test_clusters_are_listed_created_checked_and_deleted(self) -> None:
        self.assertEqual([c.name for c in self.client.clusters.list()][:1],
                         ["computeClusters/local"])
        name = self.unique("yarn")
        created = self.client.clusters.create(
            name, yarn={"rm_url": "http://127.0.0.1:9", "user": "alice"}, capacity="cpu=1",
            allowed_projects=["default"])
        self.assertEqual(created.kind, "yarn")
        self.assertEqual(created.yarn["rmUrl"], "http://127.0.0.1:9")
        self.assertEqual(created.allowed_projects, ["projects/default"])
        self.assertEqual(self.client.clusters.get(name).capacity, "cpu=1")
        self.assertIn(name, [c.name.split("/")[-1]
                             for c in self.client.clusters.list(filter='kind = "yarn"')])
        # A job bigger than the cluster is refused when submitted, naming the field.
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.experiments.create(
                {"meta": {"cmd": "true"}, "computeCluster": name,
                 "spec": {"Worker": {"replicas": 2, "resources": "cpu=1"}}})
        self.assertIn("experiment.spec.compute_cluster", str(ctx.exception))
        self.assertEqual(self.client.clusters.update(name, capacity="cpu=4").capacity, "cpu=4")
        with self.assertRaises(InvalidArgument) as bad:
            self.client.clusters.update(name, capacity="cpu=many")
        self.assertIn("compute_cluster.capacity", str(bad.exception))
        self.assertEqual(self.client.clusters.delete(name).name, f"computeClusters/{name}")
        with self.assertRaises(NotFound):
            self.client.clusters.get(name)

    def user_with_one_experiment(self, stem: str) -> Tuple[str, Client]:
        """A new user owning a new project, with a quota of one experiment at a time; returns
        the user's name and a client logged in as them in that project."""
        user = self.unique(stem + "user")
        project = self.unique(stem + "proj")
        self.client.users.create(user, password="correct horse battery staple")
        self.client.projects.create(project, owner=f"users/{user}")
        self.client.quotas.set(f"users/{user}", experiments=1)
        as_user = Client(data_dir=self.data_dir, project=project)
        as_user.login(user, "correct horse battery staple")
        return user, as_user

    def test_experiments_wait_for_quota_and_release_it(self) -> None:
        user, as_user = self.user_with_one_experiment("q")
        gate = os.path.join(self.data_dir, self.unique("gate"))
        first = as_user.experiments.create(
            {"meta": {"cmd": f"while [ ! -e {gate} ]; do sleep 0.05; done"}, "spec": {"W": {}}})
        second = as_user.experiments.create({"meta": {"cmd": "true"}, "spec": {"W": {}}})

        def waiting() -> bool:
            e = as_user.experiments.get(second.name)
            return e.state == "PENDING" and "waiting for quota" in e.state_reason
        wait_for(waiting, timeout=60, what="the second experiment waiting for quota")
        self.assertIn(as_user.experiments.get(first.name).state, ("ACCEPTED", "CREATED", "RUNNING"))
        leases = self.client.quotas.leases(f"users/{user}")
        self.assertEqual([l.holder for l in leases], [first.name], "one lease, the running one")
        with open(gate, "w", encoding="utf-8"):
            pass
        self.assertEqual(as_user.experiments.wait(first.name, timeout=120).state, "SUCCEEDED")
        self.assertEqual(as_user.experiments.wait(second.name, timeout=120).state, "SUCCEEDED")
        wait_for(lambda: not self.client.quotas.leases(f"users/{user}"), timeout=60,
                 what="the leases being given back when the experiments ended")
        for e in (first, second):
            as_user.experiments.delete(e.name)

    def test_a_higher_priority_experiment_preempts_within_the_quota(self) -> None:
        user, as_user = self.user_with_one_experiment("p")
        checkpoint = os.path.join(self.data_dir, self.unique("checkpoint"))
        # Attempt 1 runs until stopped, checkpointing on SIGTERM; its requeued attempt 2 ends.
        low = as_user.experiments.create(
            {"meta": {"cmd": f"[ \"$SUBMARINE_EXPERIMENT_ATTEMPT\" = 2 ] && exit 0; "
                             f"trap 'echo saved > {checkpoint}; exit 143' TERM; "
                             "while :; do sleep 1 & wait $! 2>/dev/null; done"},
             "spec": {"W": {}}})
        wait_for(lambda: as_user.experiments.get(low.name).state == "RUNNING", timeout=60,
                 what="the low-priority experiment running")
        high = as_user.experiments.create(
            {"meta": {"cmd": "true"}, "priority": 5, "spec": {"W": {}}})
        self.assertEqual(as_user.experiments.wait(high.name, timeout=120).state, "SUCCEEDED")
        done = as_user.experiments.wait(low.name, timeout=120)
        self.assertEqual(done.state, "SUCCEEDED", done.state_reason)
        self.assertEqual(done.attempt, 2, "preempted once, then run again")
        with open(checkpoint, encoding="utf-8") as f:
            self.assertEqual(f.read(), "saved\n", "the preempted job checkpointed on SIGTERM")
        why = f"preempted by {high.name} (priority 5 over 0)"
        killed = [h for h in done.history if h.attempt == 1 and h.state == "KILLED"]
        self.assertEqual([h.reason for h in killed], [why])
        requeued = [h for h in done.history if h.attempt == 2 and h.state == "PENDING"]
        self.assertEqual([h.reason for h in requeued], ["requeued after being " + why])
        # The quota was never exceeded: the urgent job ran only once the preempted one's lease
        # was given back.
        high_run = [h.time for h in as_user.experiments.get(high.name).history
                    if h.state == "RUNNING"]
        self.assertLessEqual(killed[0].time, high_run[0])
        wait_for(lambda: not self.client.quotas.leases(f"users/{user}"), timeout=60,
                 what="the leases being given back when the experiments ended")
        for e in (low, high):
            as_user.experiments.delete(e.name)

    def test_cli_runs_and_follows_an_experiment(self) -> None:
        token = self.client.tokens.create("cli experiment test", ttl_seconds=3600).secret
        spec = os.path.join(self.data_dir, "cli-experiment.yaml")
        with open(spec, "w", encoding="utf-8") as f:
            f.write("meta:\n  cmd: echo from-the-cli\nspec:\n  Worker: {}\n")
        env = {k: v for k, v in os.environ.items() if k != "SUBMARINE_SERVER"}
        env["SUBMARINE_TOKEN"] = token
        run = subprocess.run(
            [os.path.join(bin_dir(), "submarine"), "experiment", "run", "-f", spec, "--follow",
             "--id", self.unique("cli"), "--data-dir", self.data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, env=env,
            check=False)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("from-the-cli", run.stdout)
        self.assertIn("SUCCEEDED", run.stderr)
        failing = subprocess.run(
            [os.path.join(bin_dir(), "submarine"), "experiment", "run", "-f", "-", "--follow",
             "--data-dir", self.data_dir],
            input="meta: {cmd: 'exit 9'}\nspec: {Worker: {}}\n",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, env=env,
            check=False)
        self.assertNotEqual(failing.returncode, 0)
        self.assertIn("FAILED", failing.stderr)

    def test_unknown_update_field_is_rejected_locally(self) -> None:
        with self.assertRaises(TypeError):
            self.client.environments.update("x", colour="blue")


class BuildCheckTest(unittest.TestCase):
    """Without the binaries the suite fails, saying what to build; it never skips."""

    def setUp(self) -> None:
        self.saved = os.environ.get("SUBMARINE_BIN_DIR")
        self.dir = tempfile.mkdtemp(prefix="submarine-sdk-bin-")

    def tearDown(self) -> None:
        if self.saved is None:
            os.environ.pop("SUBMARINE_BIN_DIR", None)
        else:
            os.environ["SUBMARINE_BIN_DIR"] = self.saved
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_missing_build_is_a_failure_naming_what_to_build(self) -> None:
        os.environ.pop("SUBMARINE_BIN_DIR", None)
        with self.assertRaisesRegex(AssertionError, "SUBMARINE_BIN_DIR is not set"):
            bin_dir()
        os.environ["SUBMARINE_BIN_DIR"] = self.dir
        with self.assertRaisesRegex(AssertionError,
                                    "missing .*submarine-gateway.*ninja -C <build>"):
            bin_dir()


class ServerResolutionTest(unittest.TestCase):
    """Where the SDK finds its server; no stack needed."""

    def setUp(self) -> None:
        self.saved = os.environ.pop("SUBMARINE_SERVER", None)
        self.dir = tempfile.mkdtemp(prefix="submarine-sdk-resolve-")

    def tearDown(self) -> None:
        if self.saved is not None:
            os.environ["SUBMARINE_SERVER"] = self.saved
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_argument_then_environment_then_state_file(self) -> None:
        with open(os.path.join(self.dir, "state.json"), "w", encoding="utf-8") as f:
            f.write('{"phase": "running", "gatewayUrl": "http://127.0.0.1:1/"}')
        self.assertEqual(resolve_server(None, self.dir), "http://127.0.0.1:1")
        os.environ["SUBMARINE_SERVER"] = "http://env:2/"
        self.assertEqual(resolve_server(None, self.dir), "http://env:2")
        self.assertEqual(resolve_server("http://arg:3", self.dir), "http://arg:3")

    def test_no_server_is_failed_precondition(self) -> None:
        with self.assertRaises(SubmarineError) as ctx:
            resolve_server(None, self.dir)
        self.assertEqual(ctx.exception.status, "FAILED_PRECONDITION")

    def test_unreachable_server_is_unavailable(self) -> None:
        client = Client("http://127.0.0.1:9",
                        retry=RetryPolicy(max_attempts=2, initial_backoff=0.01))
        with self.assertRaises(SubmarineError) as ctx:
            client.environments.get("x")
        self.assertEqual(ctx.exception.status, "UNAVAILABLE")
        self.assertFalse(client.ready())


if __name__ == "__main__":
    unittest.main()
