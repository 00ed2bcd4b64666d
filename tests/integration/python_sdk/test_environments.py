"""The Python SDK against a real local stack: login with the first admin password, API tokens,
refusal of unauthenticated calls, users/teams/projects/grants/quotas, and environment CRUD,
pagination, filters and errors.

Needs ``SUBMARINE_BIN_DIR`` (the build's bin/ with ``submarine`` and the process binaries) and
``PYTHONPATH`` containing clients/python; both are set by the ctest registration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import List

from submarine import Client, PermissionDenied, SubmarineError, Unauthenticated
from submarine.environments import Environments
from submarine._server import resolve_server

BIN_DIR = os.environ.get("SUBMARINE_BIN_DIR", "")


def _submarine(args: List[str], data_dir: str, timeout: float = 300) -> str:
    """Runs the CLI; returns its output or fails with it."""
    env = {k: v for k, v in os.environ.items() if k != "SUBMARINE_SERVER"}
    result = subprocess.run(
        [os.path.join(BIN_DIR, "submarine"), *args, "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env,
        check=False)
    if result.returncode != 0:
        logs = os.path.join(data_dir, "logs", "supervisor.log")
        tail = open(logs, encoding="utf-8").read()[-3000:] if os.path.exists(logs) else ""
        raise AssertionError(f"submarine {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{tail}")
    return result.stdout


def _time_key(timestamp: str) -> tuple:
    """Sort key of an RFC 3339 UTC timestamp with 0-9 fractional digits."""
    base, _, fraction = timestamp.rstrip("Z").partition(".")
    return base, fraction.ljust(9, "0")


class EnvironmentsTest(unittest.TestCase):
    data_dir: str = ""
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        if not BIN_DIR:
            raise unittest.SkipTest("SUBMARINE_BIN_DIR is not set")
        # Under /tmp: as root, PostgreSQL runs as `postgres`, which cannot enter /root.
        cls.data_dir = tempfile.mkdtemp(prefix="submarine-sdk-", dir="/tmp")
        try:
            _submarine(["local", "up", "--gateway-port", "0"], cls.data_dir)
        except BaseException:
            _submarine(["local", "down"], cls.data_dir)
            raise
        os.environ.pop("SUBMARINE_SERVER", None)
        os.environ.pop("SUBMARINE_TOKEN", None)
        # No credentials of the person running the tests are picked up.
        os.environ["SUBMARINE_CONFIG_DIR"] = os.path.join(cls.data_dir, "client-config")
        # The server comes from the stack's state file; the first admin password from the file
        # the permission service wrote at its first start.
        with open(os.path.join(cls.data_dir, "secrets", "admin.password"),
                  encoding="utf-8") as f:
            cls.admin_password = f.read().strip()
        cls.client = Client(data_dir=cls.data_dir)
        cls.client.login("admin", cls.admin_password)

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.data_dir:
            _submarine(["local", "down"], cls.data_dir)
            shutil.rmtree(cls.data_dir, ignore_errors=True)

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
        self.assertTrue(created["secret"])
        with_token = Client(data_dir=self.data_dir, token=created["secret"])
        self.assertEqual(with_token.whoami()["name"], "users/admin")
        env_id = self.unique("tok")
        with_token.environments.create(env_id, image="python:3.11")
        self.assertEqual(self.client.environments.get(env_id)["image"], "python:3.11")
        names = [t["name"] for t in self.client.tokens.list()]
        self.assertIn(created["token"]["name"], names)
        self.client.tokens.revoke(created["token"]["name"])
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
        self.assertIn({"user": f"users/{alice}", "role": "MAINTAINER"},
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
        self.assertNotIn(f"projects/{project}", [p["name"] for p in as_bob.projects.list()])

        as_alice.grants.create(created["name"], f"users/{bob}", "read")
        # Services cache permission answers; the grant's event invalidates bob's cached denial
        # within seconds.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.assertEqual(envs_bob.get("private")["name"], created["name"])
                break
            except PermissionDenied:
                if time.monotonic() > deadline:
                    self.fail("bob still cannot read the environment 30 s after the grant")
                time.sleep(0.1)
        self.assertEqual([g["subject"] for g in as_alice.grants.list(created["name"])],
                         [f"users/{bob}"])

        usage = self.client.quotas.usage(f"teams/{team}")
        self.assertEqual(usage["owner"], f"teams/{team}")
        self.client.quotas.set(f"teams/{team}", gpus=2)
        self.assertEqual(str(self.client.quotas.usage(f"teams/{team}")["limits"]["gpus"]), "2")

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
        self.assertEqual(created["name"], name)
        self.assertEqual(created["kernelSpec"]["condaDependencies"], ["numpy=1.26"])
        self.assertEqual(created["kernelSpec"]["pipDependencies"], ["pandas==2.1.0"])
        self.assertTrue(created["etag"])
        self.assertTrue(created["uid"])

        got = self.client.environments.get(env_id)
        self.assertEqual(got["displayName"], "CRUD test")
        self.assertEqual(got["labels"], {"team": "ml"})
        self.assertEqual(self.client.environments.get(name)["uid"], created["uid"])

        updated = self.client.environments.update(env_id, etag=got["etag"],
                                                  description="changed", labels={"team": "ds"})
        self.assertEqual(updated["description"], "changed")
        self.assertEqual(updated["labels"], {"team": "ds"})
        self.assertEqual(updated["displayName"], "CRUD test", "fields outside the mask stay")
        self.assertNotEqual(updated["etag"], got["etag"])

        deleted = self.client.environments.delete(env_id)
        self.assertEqual(deleted["name"], name)
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.get(env_id)
        self.assertEqual(ctx.exception.status, "NOT_FOUND")

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
        names = [e["name"] for e in listed]
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
        self.assertFalse({e["name"] for e in first.items} & {e["name"] for e in second.items})

        newest_first = list(self.client.environments.list(
            filter=f'labels.batch = "{batch}"', order_by="create_time desc", page_size=50))
        self.assertEqual({e["name"] for e in newest_first}, set(names))
        times = [_time_key(e["createTime"]) for e in newest_first]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_filter(self) -> None:
        tag = uuid.uuid4().hex[:12]
        a = self.client.environments.create(self.unique("fa"), image="img-a",
                                            labels={"filter": tag, "kind": "a"})
        b = self.client.environments.create(self.unique("fb"), image="img-b",
                                            labels={"filter": tag, "kind": "b"})
        only_a = list(self.client.environments.list(
            filter=f'labels.filter = "{tag}" AND labels.kind = "a"'))
        self.assertEqual([e["name"] for e in only_a], [a["name"]])
        by_image = list(self.client.environments.list(
            filter=f'labels.filter = "{tag}" AND image = "img-b"'))
        self.assertEqual([e["name"] for e in by_image], [b["name"]])
        both = {e["name"] for e in self.client.environments.list(
            filter=f'labels.filter = "{tag}"')}
        self.assertEqual(both, {a["name"], b["name"]})

    def test_stale_etag_is_aborted(self) -> None:
        env_id = self.unique("etag")
        created = self.client.environments.create(env_id, image="python:3.11")
        self.client.environments.update(env_id, etag=created["etag"], display_name="first")
        with self.assertRaises(SubmarineError) as ctx:
            self.client.environments.update(env_id, etag=created["etag"], display_name="second")
        self.assertEqual(ctx.exception.status, "ABORTED")
        self.assertEqual(ctx.exception.http_status, 409)
        self.assertTrue(ctx.exception.message)
        self.assertEqual(self.client.environments.get(env_id)["displayName"], "first")

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

    def test_unknown_update_field_is_rejected_locally(self) -> None:
        with self.assertRaises(TypeError):
            self.client.environments.update("x", colour="blue")


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
        client = Client("http://127.0.0.1:9")
        with self.assertRaises(SubmarineError) as ctx:
            client.environments.get("x")
        self.assertEqual(ctx.exception.status, "UNAVAILABLE")
        self.assertFalse(client.ready())


if __name__ == "__main__":
    unittest.main()
