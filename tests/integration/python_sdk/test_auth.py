"""The SDK's authentication against a scripted fake gateway (no stack): where the token comes
from, refreshing stored credentials, the 0600 credentials file, and errors with their reason.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Tuple

from submarine import Client, PermissionDenied, SubmarineError, Unauthenticated
from submarine._auth import read_credentials, write_credentials


def _error(code: int, status: str, reason: str, message: str) -> Dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status,
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                   "reason": reason, "domain": "permission.submarine.io"}]}}


class FakeGateway:
    """Answers from a script; records (method, path, body, Authorization)."""

    def __init__(self) -> None:
        self.answers: List[Tuple[int, Dict[str, Any]]] = []
        self.requests: List[Dict[str, Any]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                gateway.requests.append({
                    "method": self.command, "path": self.path,
                    "body": json.loads(raw) if raw else None,
                    "authorization": self.headers.get("Authorization", "")})
                status, body = gateway.answers.pop(0) if gateway.answers else (
                    500, {"error": {"message": "unscripted"}})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AuthTest(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.dir = tempfile.mkdtemp(prefix="submarine-sdk-auth-")
        self.path = os.path.join(self.dir, "conf", "credentials")
        self.saved = {k: os.environ.pop(k, None) for k in ("SUBMARINE_TOKEN", "SUBMARINE_SERVER")}

    def tearDown(self) -> None:
        self.gateway.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        for k, v in self.saved.items():
            if v is not None:
                os.environ[k] = v

    def store(self, expires_at: int, gateway: str = "") -> None:
        write_credentials({"gateway": gateway or self.gateway.url, "username": "alice",
                           "access_token": "stored-access", "refresh_token": "stored-refresh",
                           "expires_at": expires_at}, self.path)

    def client(self, **kwargs: Any) -> Client:
        return Client(self.gateway.url, credentials_file=self.path, **kwargs)

    def test_explicit_token_then_environment_then_file(self) -> None:
        self.store(expires_at=2**40)
        os.environ["SUBMARINE_TOKEN"] = "env-token"
        self.gateway.answers = [(200, {"name": "users/a"})] * 3
        self.client(token="arg-token").users.me()
        self.client().users.me()
        del os.environ["SUBMARINE_TOKEN"]
        self.client().users.me()
        self.assertEqual([r["authorization"] for r in self.gateway.requests],
                         ["Bearer arg-token", "Bearer env-token", "Bearer stored-access"])

    def test_stored_token_goes_only_to_its_gateway(self) -> None:
        self.store(expires_at=2**40, gateway="http://other:1")
        self.gateway.answers = [(401, _error(401, "UNAUTHENTICATED", "TOKEN_MISSING", "no"))]
        with self.assertRaises(Unauthenticated):
            self.client().projects.get("p")
        self.assertEqual(self.gateway.requests[0]["authorization"], "")

    def test_refreshes_expired_stored_token_and_writes_it_back(self) -> None:
        self.store(expires_at=1)
        self.gateway.answers = [
            (200, {"accessToken": "acc-2", "refreshToken": "ref-2", "expiresIn": "900"}),
            (200, {"projects": []}),
        ]
        self.assertEqual(list(self.client().projects.list()), [])
        first, second = self.gateway.requests
        self.assertEqual(first["path"], "/v1/auth:refresh")
        self.assertEqual(first["body"], {"refreshToken": "stored-refresh"})
        self.assertEqual(first["authorization"], "")
        self.assertEqual(second["authorization"], "Bearer acc-2")
        stored = read_credentials(self.path)
        self.assertEqual((stored["access_token"], stored["refresh_token"]), ("acc-2", "ref-2"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_retries_once_after_token_expired(self) -> None:
        self.store(expires_at=2**40)
        self.gateway.answers = [
            (401, _error(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired")),
            (200, {"accessToken": "acc-3", "refreshToken": "ref-3", "expiresIn": "900"}),
            (200, {"name": "users/alice"}),
        ]
        self.assertEqual(self.client().users.me()["name"], "users/alice")
        self.assertEqual(self.gateway.requests[2]["authorization"], "Bearer acc-3")

    def test_login_uses_the_new_token_and_saves_only_when_asked(self) -> None:
        self.gateway.answers = [
            (200, {"accessToken": "acc-l", "refreshToken": "ref-l", "expiresIn": "900",
                   "user": {"name": "users/alice"}}),
            (200, {"name": "users/alice"}),
        ]
        client = self.client()
        self.assertEqual(client.login("alice", "a-long-password")["name"], "users/alice")
        self.assertEqual(self.gateway.requests[0]["body"],
                         {"username": "alice", "password": "a-long-password"})
        client.users.me()
        self.assertEqual(self.gateway.requests[1]["authorization"], "Bearer acc-l")
        self.assertFalse(os.path.exists(self.path))

        self.gateway.answers = [(200, {"accessToken": "acc-s", "refreshToken": "ref-s",
                                       "expiresIn": "900"})]
        self.client().login("alice", "a-long-password", save=True)
        self.assertEqual(read_credentials(self.path)["access_token"], "acc-s")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.path)).st_mode), 0o700)
        with open(self.path, encoding="utf-8") as f:
            self.assertNotIn("a-long-password", f.read())

    def test_errors_carry_status_class_and_reason(self) -> None:
        self.gateway.answers = [(403, _error(403, "PERMISSION_DENIED", "PERMISSION_DENIED",
                                             "alice may not read projects/x"))]
        with self.assertRaises(PermissionDenied) as ctx:
            self.client(token="t").projects.get("x")
        self.assertIsInstance(ctx.exception, SubmarineError)
        self.assertEqual(ctx.exception.reason, "PERMISSION_DENIED")
        self.assertEqual(ctx.exception.http_status, 403)

    def test_requests_send_what_the_api_expects(self) -> None:
        self.gateway.answers = [(200, {})] * 4
        client = self.client(token="t")
        client.grants.create("projects/p/environments/e", "users/bob", "read")
        client.projects.bind("p", "teams/ml", "editor")
        client.quotas.set("teams/ml", gpus=2)
        client.credentials.create("git", b"\x00secret", type="git-token", user="alice")
        bodies = [(r["method"], r["path"], r["body"]) for r in self.gateway.requests]
        self.assertEqual(bodies, [
            ("POST", "/v1/grants", {"resource": "projects/p/environments/e",
                                    "subject": "users/bob", "permission": "READ"}),
            ("POST", "/v1/projects/p/roleBindings", {"subject": "teams/ml", "role": "EDITOR"}),
            ("PATCH", "/v1/teams/ml/quota", {"gpus": 2}),
            ("POST", "/v1/users/alice/credentials",
             {"credentialId": "git", "credential": {"type": "git-token"},
              "secret": "AHNlY3JldA=="}),
        ])
        with self.assertRaises(ValueError):
            client.grants.create("projects/p", "users/bob", "execute")


if __name__ == "__main__":
    unittest.main()
