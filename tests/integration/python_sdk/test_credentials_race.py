"""Single-use refresh tokens shared through one credentials file: two processes (two SDK
processes, or the CLI and the SDK) find the same expired access token and both must end up
authenticated, with the newest tokens in the file.

The fake gateway makes the race certain instead of likely: it holds the first refresh it gets
until the other process is demonstrably racing — blocked on the credentials lock (a waiter in
/proc/locks), or, were there no lock, sending its own refresh with the same, by then spent, token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Dict, List

from sdk_test_support import (Answer, FakeGateway, Request, bin_dir, error_body,
                              lock_waiter_exists)
from submarine._auth import read_credentials, write_credentials

SDK_CALL = """
import sys
from submarine import Client
client = Client(sys.argv[1], credentials_file=sys.argv[2])
print(client.users.me().name)
"""


class RotatingGateway:
    """Refresh tokens are single use: a refresh with anything but the newest one is refused.
    Access tokens it issued are accepted; any other gets 401 TOKEN_EXPIRED."""

    def __init__(self, gateway: FakeGateway, lock_path: str) -> None:
        self.lock_path = lock_path
        self.refreshes: List[Request] = []
        self.newest_refresh = "ref-0"
        self.issued: List[str] = []
        self.race_seen = False
        self._cond = threading.Condition()
        gateway.handler = self.handle

    def handle(self, request: Request) -> Answer:
        if request.path == "/v1/auth:refresh":
            return self._refresh(request)
        if request.path == "/v1/users:me":
            with self._cond:
                valid = request.authorization[len("Bearer "):] in self.issued
            if valid:
                return Answer(200, {"name": "users/alice"})
            return Answer(401, error_body(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired"))
        return Answer(404, error_body(404, "NOT_FOUND", "NOT_FOUND", request.path))

    def _refresh(self, request: Request) -> Answer:
        with self._cond:
            self.refreshes.append(request)
            self._cond.notify_all()
            if len(self.refreshes) == 1:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if len(self.refreshes) > 1 or lock_waiter_exists(self.lock_path):
                        self.race_seen = True
                        break
                    self._cond.wait(0.005)
            if request.body.get("refreshToken") != self.newest_refresh:
                return Answer(401, error_body(401, "UNAUTHENTICATED", "REFRESH_TOKEN_INVALID",
                                              "refresh token already used"))
            n = len(self.issued) + 1
            self.issued.append(f"acc-{n}")
            self.newest_refresh = f"ref-{n}"
            return Answer(200, {"accessToken": f"acc-{n}", "refreshToken": f"ref-{n}",
                                "expiresIn": "900", "tokenType": "Bearer",
                                "user": {"name": "users/alice"}})


class CredentialsRaceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.dir = tempfile.mkdtemp(prefix="submarine-sdk-race-")
        self.path = os.path.join(self.dir, "credentials")
        write_credentials({"gateway": self.gateway.url, "username": "alice",
                           "access_token": "acc-0", "refresh_token": "ref-0",
                           "expires_at": 1}, self.path)  # expired long ago
        self.rotating = RotatingGateway(self.gateway, self.path + ".lock")
        self.env: Dict[str, str] = {k: v for k, v in os.environ.items()
                                    if k not in ("SUBMARINE_TOKEN", "SUBMARINE_SERVER")}
        self.env["SUBMARINE_CONFIG_DIR"] = self.dir

    def tearDown(self) -> None:
        self.gateway.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sdk_process(self) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", SDK_CALL, self.gateway.url, self.path],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def cli_process(self) -> subprocess.Popen:
        cli = os.path.join(bin_dir("submarine"), "submarine")
        return subprocess.Popen([cli, "whoami", "-o", "json", "--server", self.gateway.url],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def race(self, first: subprocess.Popen, second: subprocess.Popen) -> List[str]:
        outputs = []
        for process in (first, second):
            try:
                output, _ = process.communicate(timeout=60)
            finally:
                process.kill()
            self.assertEqual(process.returncode, 0, output)
            outputs.append(output)
        return outputs

    def assert_both_authenticated_with_the_newest_tokens(self) -> None:
        self.assertTrue(self.rotating.race_seen, "the second process never raced the first")
        self.assertEqual(len(self.rotating.refreshes), 1,
                         "the second process took over the first one's tokens")
        stored = read_credentials(self.path)
        self.assertEqual((stored["access_token"], stored["refresh_token"]),
                         (self.rotating.issued[-1], self.rotating.newest_refresh))
        self.assertEqual(stored["username"], "alice")

    def test_two_sdk_processes(self) -> None:
        outputs = self.race(self.sdk_process(), self.sdk_process())
        self.assertEqual([o.strip() for o in outputs], ["users/alice", "users/alice"])
        self.assert_both_authenticated_with_the_newest_tokens()

    def test_the_cli_and_the_sdk(self) -> None:
        cli, sdk = self.race(self.cli_process(), self.sdk_process())
        self.assertEqual(json.loads(cli)["name"], "users/alice")
        self.assertEqual(sdk.strip(), "users/alice")
        self.assert_both_authenticated_with_the_newest_tokens()


if __name__ == "__main__":
    unittest.main()
