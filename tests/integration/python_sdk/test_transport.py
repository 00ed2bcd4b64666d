"""The SDK's transport against a scripted fake gateway (no stack): keep-alive connections and
reconnecting, request ids on every mutation where the RPC's HTTP rule puts them, retries of what
is safe to repeat (with backoff, jitter and Retry-After), and typed resources.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import unittest
from datetime import datetime, timezone
from typing import List, Optional, Set, Tuple

from sdk_test_support import (Answer, FakeGateway, close_sdk_connections, error_body,
                              free_port, wait_for)
from submarine import (Client, Environment, KernelSpec, RetryPolicy, SubmarineError, TeamMember,
                       Usage)
from submarine._auth import write_credentials
from submarine._http import Transport, retry_after_seconds
from submarine.environments import Environments
from submarine.permission import Users

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto",
                         "submarine")
PROTOS = [os.path.join(PROTO_DIR, "permission", "v1", "permission.proto"),
          os.path.join(PROTO_DIR, "environment", "v1", "environment.proto"),
          os.path.join(PROTO_DIR, "experiment", "v1", "experiment.proto")]

UNAVAILABLE = error_body(503, "UNAVAILABLE", "BACKEND_UNAVAILABLE", "draining")


class HttpRule:
    """One binding of an RPC's google.api.http option, read from the .proto text."""

    def __init__(self, rpc: str, request: str, method: str, template: str, body: str) -> None:
        self.rpc = rpc
        self.request = request
        self.method = method.upper()
        self.body = body
        pattern = re.sub(r"\{([a-z_.]+)(?:=([^}]*))?\}",
                         lambda m: (m.group(2) or "*").replace("**", ".+").replace("*", "[^/]+"),
                         template)
        self.path = re.compile(pattern.replace(":", r"\:") + "$")


def http_rules() -> Tuple[List[HttpRule], Set[str]]:
    """Every HTTP binding of the permission, environment and experiment services, and the request
    messages that have a request_id field."""
    rules: List[HttpRule] = []
    with_request_id: Set[str] = set()
    for path in PROTOS:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for message, fields in re.findall(r"^message (\w+) \{(.*?)^\}", text, re.M | re.S):
            if re.search(r"^\s+string request_id = \d+;", fields, re.M):
                with_request_id.add(message)
        for rpc, request, option in re.findall(
                r"rpc (\w+)\((\w+)\)\s+returns \(\w+\) \{(.*?)^  \}", text, re.M | re.S):
            for method, template, body in re.findall(
                    r"(get|post|patch|put|delete): \"([^\"]+)\"(?:\s*body: \"([^\"]*)\")?",
                    option):
                rules.append(HttpRule(rpc, request, method, template, body))
    return rules, with_request_id


class TransportTest(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.saved = {k: os.environ.pop(k, None) for k in ("SUBMARINE_TOKEN", "SUBMARINE_SERVER")}
        self.sleeps: List[float] = []
        self.now = 0.0

    def tearDown(self) -> None:
        close_sdk_connections()
        self.gateway.close()
        for k, v in self.saved.items():
            if v is not None:
                os.environ[k] = v

    def transport(self, url: str = "", retry: Optional[RetryPolicy] = None,
                  jitter: float = 0.5, timeout: float = 30.0) -> Transport:
        """A transport whose waits between retries only advance a fake clock (and are
        recorded)."""
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.now += seconds

        return Transport(url or self.gateway.url, timeout=timeout, retry=retry, sleep=sleep,
                         clock=lambda: self.now, jitter=lambda: jitter)

    # ---- connections

    def test_reuses_one_connection_per_thread(self) -> None:
        self.gateway.answers = [(200, {"name": "users/a"})] * 7
        client = Client(self.gateway.url, token="t")
        for _ in range(3):
            client.users.me()
        other: List[int] = []

        def in_another_thread() -> None:
            for _ in range(3):
                Client(self.gateway.url, token="t").users.me()
            other.extend(r.client_port for r in self.gateway.requests[3:])

        thread = threading.Thread(target=in_another_thread)
        thread.start()
        thread.join(30)
        ports = [r.client_port for r in self.gateway.requests]
        self.assertEqual(len(set(ports[:3])), 1, "one connection for the first thread")
        self.assertEqual(len(set(other)), 1, "one for the other thread, even across clients")
        self.assertNotEqual(ports[0], other[0])
        client.close()
        client.users.me()
        self.assertNotIn(self.gateway.requests[-1].client_port, (ports[0], other[0]),
                         "close() closed this thread's connection")

    def test_reconnects_when_the_server_closed_the_connection(self) -> None:
        self.gateway.answers = [
            Answer(200, {"name": "users/a"}, close=True),  # closes without saying so
            Answer(200, {"accessToken": "a"}, headers={"Connection": "close"}, close=True),
            Answer(200, {"name": "users/a"}),
        ]
        client = Client(self.gateway.url, token="t")
        client.users.me()
        # Like an idle timeout: the server has closed the connection before the next request.
        wait_for(lambda: self.gateway.closed_connections == 1, what="the server closing")
        client.login("alice", "a-long-password")  # a POST that must not be sent twice
        client.users.me()
        ports = [r.client_port for r in self.gateway.requests]
        self.assertEqual(len(self.gateway.requests), 3, "each request sent once")
        self.assertEqual(len(set(ports)), 3, "a new connection after each close")

    # ---- retries

    def test_retries_a_mutation_with_its_request_id_and_honours_retry_after(self) -> None:
        self.gateway.answers = [
            Answer(503, UNAVAILABLE, headers={"Retry-After": "2"}),
            Answer(reset=True),
            Answer(200, {"name": "projects/default/environments/e", "image": "i"}),
        ]
        envs = Environments(self.transport(jitter=1.0), "default")
        created = envs.create("e", image="i")
        self.assertEqual(created, Environment(name="projects/default/environments/e", image="i"))
        ids = [r.request_id for r in self.gateway.requests]
        self.assertEqual(len(ids), 3)
        self.assertEqual(len(set(ids)), 1, f"every attempt repeats the call's request id: {ids}")
        self.assertRegex(ids[0], r"^[0-9a-f-]{36}$")
        self.assertEqual(self.sleeps, [2.0, 0.4], "Retry-After, then the backoff of retry 2")

        self.gateway.answers = [(200, {"name": "projects/default/environments/f"})]
        envs.create("f", image="i")
        self.assertNotEqual(self.gateway.requests[3].request_id, ids[0], "one id per call")

    def test_refused_connections_are_retried_up_to_max_attempts(self) -> None:
        host, port = free_port()
        policy = RetryPolicy(max_attempts=4, initial_backoff=0.2, max_backoff=0.5)
        users = Users(self.transport(f"http://{host}:{port}", retry=policy, jitter=1.0),
                      lambda: "alice")
        with self.assertRaises(SubmarineError) as ctx:
            users.get("bob")
        self.assertEqual(ctx.exception.status, "UNAVAILABLE")
        self.assertEqual(self.sleeps, [0.2, 0.4, 0.5], "doubling, capped at max_backoff")

    def test_gives_up_rather_than_wait_past_max_elapsed(self) -> None:
        self.gateway.answers = [Answer(503, UNAVAILABLE, headers={"Retry-After": "10"})]
        users = Users(self.transport(retry=RetryPolicy(max_elapsed=5)), lambda: "alice")
        with self.assertRaises(SubmarineError) as ctx:
            users.get("bob")
        self.assertEqual((ctx.exception.status, ctx.exception.retry_after), ("UNAVAILABLE", 10))
        self.assertEqual((len(self.gateway.requests), self.sleeps), (1, []))

    def test_never_retries_other_failures_or_requests_without_a_request_id(self) -> None:
        envs = Environments(self.transport(), "default")
        for status, code in ((500, "INTERNAL"), (409, "ABORTED"), (429, "RESOURCE_EXHAUSTED")):
            self.gateway.requests.clear()
            self.gateway.answers = [(status, error_body(status, code, "X", "no"))]
            with self.assertRaises(SubmarineError):
                envs.create("e", image="i")
            self.assertEqual(len(self.gateway.requests), 1, f"HTTP {status} is not retried")

        self.gateway.requests.clear()
        self.gateway.answers = [Answer(503, UNAVAILABLE)] * 2
        with self.assertRaises(SubmarineError):
            self.transport().request("POST", "/v1/auth:login", body={"username": "a"},
                                     authenticate=False)
        self.assertEqual(len(self.gateway.requests), 1, "a POST without request id: once")

        self.gateway.requests.clear()
        answered = threading.Event()
        self.gateway.handler = lambda request: (answered.wait(30), Answer(200, {}))[1]
        with self.assertRaises(SubmarineError) as ctx:
            Environments(self.transport(timeout=0.3), "default").get("e")
        answered.set()
        self.assertEqual(ctx.exception.status, "DEADLINE_EXCEEDED")
        self.assertEqual(len(self.gateway.requests), 1, "a timeout is not retried")

    def test_stream_yields_ndjson_messages_and_raises_the_error_line(self) -> None:
        transport = Transport(self.gateway.url)
        self.gateway.answers = [Answer(200, raw=b'{"data":"a","nextOffset":"1"}\n\n'
                                                b'{"data":"b","nextOffset":"2","complete":true}\n')]
        messages = list(transport.stream("GET", "/v1/projects/p/experiments/e/logs:stream",
                                         query={"follow": "true"}))
        self.assertEqual([m["data"] for m in messages], ["a", "b"])
        self.assertTrue(messages[-1]["complete"])
        self.assertEqual(self.gateway.requests[0].headers["accept"], "application/x-ndjson")
        self.assertEqual(self.gateway.requests[0].query, {"follow": "true"})

        # After the first message the status line is gone: the error is the stream's last line.
        failed = json.dumps(error_body(400, "FAILED_PRECONDITION", "LOG_GONE", "it went"))
        self.gateway.answers = [Answer(200, raw=b'{"data":"a"}\n' + failed.encode() + b"\n")]
        got = []
        with self.assertRaises(SubmarineError) as ctx:
            for m in transport.stream("GET", "/v1/projects/p/experiments/e/logs:stream"):
                got.append(m["data"])
        self.assertEqual(got, ["a"])
        self.assertEqual(ctx.exception.status, "FAILED_PRECONDITION")
        self.assertEqual(ctx.exception.reason, "LOG_GONE")
        self.assertEqual(ctx.exception.http_status, 400)

        # Before it, an ordinary error answer.
        self.gateway.answers = [(404, error_body(404, "NOT_FOUND", "TASK_NOT_FOUND", "no ps-7"))]
        with self.assertRaises(SubmarineError) as ctx:
            list(transport.stream("GET", "/v1/projects/p/experiments/e/logs:stream"))
        self.assertEqual(ctx.exception.status, "NOT_FOUND")
        self.assertEqual(ctx.exception.reason, "TASK_NOT_FOUND")

    def test_retry_after_reads_seconds_and_http_dates(self) -> None:
        self.assertEqual(retry_after_seconds("7", 0), 7.0)
        # Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        self.assertEqual(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412450), 30.0)
        self.assertEqual(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0.0)
        self.assertIsNone(retry_after_seconds("soon", 0))
        self.assertIsNone(retry_after_seconds(None, 0))

    # ---- request ids

    def test_every_mutation_sends_its_request_id_where_its_http_rule_says(self) -> None:
        rules, with_request_id = http_rules()
        self.assertTrue(rules and with_request_id, "the protos were read")
        directory = tempfile.mkdtemp(prefix="submarine-sdk-rid-")
        self.addCleanup(shutil.rmtree, directory, True)
        credentials = os.path.join(directory, "credentials")
        # Expired stored credentials: the first call refreshes them (RefreshToken).
        write_credentials({"gateway": self.gateway.url, "username": "alice",
                           "access_token": "a", "refresh_token": "r", "expires_at": 1},
                          credentials)
        self.gateway.handler = lambda request: Answer(
            200, {"accessToken": "a2", "refreshToken": "r2", "expiresIn": "900"}
            if request.path == "/v1/auth:refresh" else {})
        client = Client(self.gateway.url, credentials_file=credentials)
        envs = client.environments
        envs.create("e", image="i")
        envs.update("e", display_name="x")
        envs.delete("e")
        client.users.create("bob", password="a-long-password")
        client.users.update("bob", email="bob@example.com")
        client.users.set_password("bob", "another-long-password")
        client.users.delete("bob")
        client.teams.create("ml")
        client.teams.add_member("ml", "bob")
        client.teams.remove_member("ml", "bob")
        client.teams.delete("ml")
        client.projects.create("p")
        client.projects.update("p", description="d")
        client.projects.bind("p", "users/bob", "viewer")
        client.projects.unbind("p", "b1")
        client.projects.delete("p")
        client.grants.create("projects/p/environments/e", "users/bob", "read")
        client.grants.delete("g1")
        client.tokens.create("ci")
        client.tokens.revoke("t1")
        client.quotas.set("teams/ml", gpus=1)
        client.quotas.acquire("teams/ml", "p", gpus=1)
        client.quotas.heartbeat("l1")
        client.quotas.release("l1")
        client.credentials.create("git", b"s")
        client.credentials.delete("git")
        client.experiments.create({"meta": {"cmd": "true"}, "spec": {"Worker": {}}})
        client.experiments.update("x", labels={"a": "b"})
        client.experiments.stop("x")
        client.experiments.retry("x")
        client.experiments.clone("x", env_vars={"LR": "0.1"})
        client.experiments.delete("x")
        client.logout()

        covered = set()
        for request in self.gateway.requests:
            matching = [r for r in rules
                        if r.method == request.method and r.path.match(request.path)]
            self.assertTrue(matching, f"no RPC serves {request.method} {request.path}")
            rule = matching[0]
            if rule.request not in with_request_id:
                continue
            in_body = isinstance(request.body, dict) and "requestId" in request.body
            in_query = "requestId" in request.query
            where = "body" if rule.body == "*" else "query"
            self.assertEqual((in_body, in_query), (where == "body", where == "query"),
                             f"{rule.rpc} (body {rule.body!r}) must send requestId in its "
                             f"{where}: {request.target} {request.body}")
            self.assertRegex(request.request_id, r"^[0-9a-f-]{36}$", rule.rpc)
            covered.add(rule.rpc)
        mutations = {r.rpc for r in rules if r.request in with_request_id}
        self.assertEqual(mutations - covered, set(), "mutations the SDK cannot call")

    # ---- typed resources

    def test_resources_are_typed_dataclasses_that_keep_unknown_fields(self) -> None:
        self.gateway.answers = [
            (200, {"name": "projects/p/environments/e", "image": "python:3.11",
                   "kernelSpec": {"pipDependencies": ["pandas"], "futureField": 1},
                   "labels": {"team": "ml"}, "createTime": "2024-05-01T10:00:00.123456789Z",
                   "etag": "e1", "addedLater": {"x": [1]}}),
            (200, {"owner": "teams/ml", "limits": {"gpus": "4"}, "used": {"gpus": "1"},
                   "activeLeases": 1}),
            (200, {"members": [{"user": "users/bob", "role": "MAINTAINER"}]}),
        ]
        client = Client(self.gateway.url, token="t")
        env = client.environments.get("projects/p/environments/e")
        self.assertIsInstance(env, Environment)
        self.assertEqual(env.kernel_spec, KernelSpec(pip_dependencies=["pandas"],
                                                     extra={"futureField": 1}))
        self.assertEqual(env.create_time,
                         datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc))
        self.assertIsNone(env.update_time)
        self.assertEqual((env.labels, env.etag), ({"team": "ml"}, "e1"))
        self.assertEqual(env.extra, {"addedLater": {"x": [1]}})

        usage = client.quotas.usage("teams/ml")
        self.assertIsInstance(usage, Usage)
        self.assertEqual((usage.limits.gpus, usage.used.gpus, usage.limits.cpu_millis),
                         (4, 1, None), "int64 strings become ints; absent limits None")
        self.assertEqual(client.teams.members("ml"),
                         [TeamMember(user="users/bob", role="MAINTAINER")])


if __name__ == "__main__":
    unittest.main()
