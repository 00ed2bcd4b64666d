"""The SDK's authentication against a scripted fake gateway (no stack): where the token comes
from, refreshing stored credentials — taking over tokens another process refreshed, under the
credentials lock —, the 0600 credentials file, and errors with their reason.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
import unittest
from typing import Any, List

from sdk_test_support import (Answer, FakeGateway, close_sdk_connections, error_body,
                              lock_waiter_exists, wait_for)
from submarine import Client, PermissionDenied, SubmarineError, Unauthenticated, User
from submarine._auth import CredentialsLock, read_credentials, write_credentials


class AuthTest(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.dir = tempfile.mkdtemp(prefix="submarine-sdk-auth-")
        self.path = os.path.join(self.dir, "conf", "credentials")
        self.saved = {k: os.environ.pop(k, None)
                      for k in ("SUBMARINE_TOKEN", "SUBMARINE_SERVER", "SUBMARINE_SECRETS_DIR")}

    def tearDown(self) -> None:
        close_sdk_connections()
        self.gateway.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        for k, v in self.saved.items():
            if v is not None:
                os.environ[k] = v

    def store(self, expires_at: int, gateway: str = "", access: str = "stored-access",
              refresh: str = "stored-refresh", username: str = "alice") -> None:
        write_credentials({"gateway": gateway or self.gateway.url, "username": username,
                           "access_token": access, "refresh_token": refresh,
                           "expires_at": expires_at}, self.path)

    def client(self, **kwargs: Any) -> Client:
        return Client(self.gateway.url, credentials_file=self.path, **kwargs)

    def authorizations(self) -> List[str]:
        return [r.authorization for r in self.gateway.requests]

    def test_explicit_token_then_environment_then_file(self) -> None:
        self.store(expires_at=2**40)
        os.environ["SUBMARINE_TOKEN"] = "env-token"
        self.gateway.answers = [(200, {"name": "users/a"})] * 3
        self.client(token="arg-token").users.me()
        self.client().users.me()
        del os.environ["SUBMARINE_TOKEN"]
        self.assertEqual(self.client().users.me(), User(name="users/a"))
        self.assertEqual(self.authorizations(),
                         ["Bearer arg-token", "Bearer env-token", "Bearer stored-access"])

    def test_a_tasks_renewed_workload_token_is_read_from_its_secrets_dir(self) -> None:
        secrets = os.path.join(self.dir, "secrets")
        os.makedirs(secrets)
        token_file = os.path.join(secrets, "SUBMARINE_TOKEN")

        def renew(token: str) -> None:  # as the backend does: a new file renamed over the old
            with open(token_file + ".tmp", "w", encoding="utf-8") as f:
                f.write(token)
            os.replace(token_file + ".tmp", token_file)

        renew("first")
        os.environ["SUBMARINE_SECRETS_DIR"] = secrets
        os.environ["SUBMARINE_TOKEN"] = "started-with"
        revoked = Answer(401, error_body(401, "UNAUTHENTICATED", "TOKEN_REVOKED", "revoked"))
        self.gateway.answers = [(200, {"name": "users/a"})] * 2
        client = self.client()
        client.users.me()
        renew("second")
        client.users.me()

        # Renewed (and the old one revoked) while a request was on its way: retried once with
        # the new token.
        def renewed_meanwhile(request: Any) -> Answer:
            if request.authorization == "Bearer second":
                renew("third")
                return revoked
            return Answer(200, {"name": "users/a"})

        self.gateway.handler = renewed_meanwhile
        client.users.me()
        # Revoked with nothing newer: the error stands.
        self.gateway.handler = lambda request: revoked
        with self.assertRaises(Unauthenticated):
            client.users.me()
        self.gateway.handler = None
        self.assertEqual(self.authorizations(),
                         ["Bearer first", "Bearer second", "Bearer second", "Bearer third",
                          "Bearer third"])
        # An explicit token still wins.
        self.gateway.answers = [(200, {"name": "users/a"})]
        self.client(token="arg-token").users.me()
        self.assertEqual(self.authorizations()[-1], "Bearer arg-token")

    def test_stored_token_goes_only_to_its_gateway(self) -> None:
        self.store(expires_at=2**40, gateway="http://other:1")
        self.gateway.answers = [(401, error_body(401, "UNAUTHENTICATED", "TOKEN_MISSING", "no"))]
        with self.assertRaises(Unauthenticated):
            self.client().projects.get("p")
        self.assertEqual(self.authorizations(), [""])

    def test_refreshes_expired_stored_token_and_writes_it_back(self) -> None:
        self.store(expires_at=1)
        self.gateway.answers = [
            (200, {"accessToken": "acc-2", "refreshToken": "ref-2", "expiresIn": "900"}),
            (200, {"projects": []}),
        ]
        self.assertEqual(list(self.client().projects.list()), [])
        first, second = self.gateway.requests
        self.assertEqual(first.path, "/v1/auth:refresh")
        self.assertEqual(first.body["refreshToken"], "stored-refresh")
        self.assertTrue(first.request_id, "a refresh whose answer is lost can be replayed")
        self.assertEqual(first.authorization, "")
        self.assertEqual(second.authorization, "Bearer acc-2")
        stored = read_credentials(self.path)
        self.assertEqual((stored["access_token"], stored["refresh_token"]), ("acc-2", "ref-2"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.path + ".lock").st_mode), 0o600)

    def test_retries_once_after_token_expired(self) -> None:
        self.store(expires_at=2**40)
        self.gateway.answers = [
            (401, error_body(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired")),
            (200, {"accessToken": "acc-3", "refreshToken": "ref-3", "expiresIn": "900"}),
            (200, {"name": "users/alice"}),
        ]
        self.assertEqual(self.client().users.me().name, "users/alice")
        self.assertEqual(self.gateway.requests[2].authorization, "Bearer acc-3")

    def test_takes_over_tokens_another_process_refreshed(self) -> None:
        self.store(expires_at=int(time.time()) + 10)  # about to expire
        client = self.client()  # has read the file
        # Meanwhile the CLI (or another SDK process) refreshed and spent "stored-refresh".
        self.store(expires_at=2**40, access="acc-other", refresh="ref-other")
        self.gateway.answers = [(200, {"name": "users/alice"})]
        client.users.me()
        self.assertEqual(self.authorizations(), ["Bearer acc-other"], "no refresh of its own")
        self.assertEqual(read_credentials(self.path)["refresh_token"], "ref-other")

    def test_after_a_401_takes_over_a_fresher_token_from_the_file(self) -> None:
        self.store(expires_at=2**40)
        self.gateway.answers = [
            (200, {"name": "users/alice"}),
            (401, error_body(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired")),
            (200, {"name": "users/alice"}),
        ]
        client = self.client()
        client.users.me()
        self.store(expires_at=2**40, access="acc-other", refresh="ref-other")
        client.users.me()
        self.assertEqual(self.authorizations(),
                         ["Bearer stored-access", "Bearer stored-access", "Bearer acc-other"])

    def test_never_writes_refreshed_tokens_over_another_login(self) -> None:
        self.store(expires_at=2**40)
        self.gateway.answers = [
            (200, {"name": "users/alice"}),
            (401, error_body(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired")),
            (200, {"accessToken": "acc-2", "refreshToken": "ref-2", "expiresIn": "900"}),
            (200, {"name": "users/alice"}),
        ]
        client = self.client()
        client.users.me()
        self.store(expires_at=2**40, access="acc-bob", refresh="ref-bob", username="bob")
        client.users.me()
        self.assertEqual(self.gateway.requests[2].body["refreshToken"], "stored-refresh")
        self.assertEqual(self.gateway.requests[3].authorization, "Bearer acc-2")
        self.assertEqual(read_credentials(self.path)["username"], "bob", "bob's login stays")

    def test_waits_for_the_lock_of_another_refresher_and_uses_its_tokens(self) -> None:
        self.store(expires_at=1)
        self.gateway.answers = [(200, {"name": "users/alice"})]
        client = self.client()
        results: List[Any] = []
        with CredentialsLock(self.path) as lock:
            caller = threading.Thread(target=lambda: results.append(client.users.me()))
            caller.start()
            wait_for(lambda: lock_waiter_exists(lock.path), what="the SDK waiting for the lock")
            # What the lock holder does: refresh, write the file, unlock.
            self.store(expires_at=2**40, access="acc-other", refresh="ref-other")
        caller.join(30)
        self.assertEqual(results, [User(name="users/alice")])
        self.assertEqual(self.authorizations(), ["Bearer acc-other"], "no refresh of its own")

    def test_login_uses_the_new_token_and_saves_only_when_asked(self) -> None:
        self.gateway.answers = [
            (200, {"accessToken": "acc-l", "refreshToken": "ref-l", "expiresIn": "900",
                   "user": {"name": "users/alice", "displayName": "Alice"}}),
            (200, {"name": "users/alice"}),
        ]
        client = self.client()
        self.assertEqual(client.login("alice", "a-long-password"),
                         User(name="users/alice", display_name="Alice"))
        self.assertEqual(self.gateway.requests[0].body,
                         {"username": "alice", "password": "a-long-password"})
        client.users.me()
        self.assertEqual(self.gateway.requests[1].authorization, "Bearer acc-l")
        self.assertFalse(os.path.exists(self.path))

        self.gateway.answers = [(200, {"accessToken": "acc-s", "refreshToken": "ref-s",
                                       "expiresIn": "900"})]
        self.client().login("alice", "a-long-password", save=True)
        self.assertEqual(read_credentials(self.path)["access_token"], "acc-s")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.path)).st_mode), 0o700)
        with open(self.path, encoding="utf-8") as f:
            self.assertNotIn("a-long-password", f.read())

    def test_logout_sends_the_refresh_token_with_a_request_id(self) -> None:
        self.store(expires_at=2**40)
        self.gateway.answers = [(200, {})]
        client = self.client()
        client.logout()
        request = self.gateway.requests[0]
        self.assertEqual((request.path, request.body["refreshToken"]),
                         ("/v1/auth:logout", "stored-refresh"))
        self.assertTrue(request.body["requestId"])
        self.assertEqual(client._auth.source, "")

    def test_errors_carry_status_class_and_reason(self) -> None:
        self.gateway.answers = [(403, error_body(403, "PERMISSION_DENIED", "PERMISSION_DENIED",
                                                 "alice may not read projects/x"))]
        with self.assertRaises(PermissionDenied) as ctx:
            self.client(token="t").projects.get("x")
        self.assertIsInstance(ctx.exception, SubmarineError)
        self.assertEqual(ctx.exception.reason, "PERMISSION_DENIED")
        self.assertEqual(ctx.exception.http_status, 403)

    def test_requests_send_what_the_api_expects(self) -> None:
        self.gateway.answers = [Answer(200, {})] * 4
        client = self.client(token="t")
        client.grants.create("projects/p/environments/e", "users/bob", "read")
        client.projects.bind("p", "teams/ml", "editor")
        client.quotas.set("teams/ml", gpus=2)
        client.credentials.create("git", b"\x00secret", type="git-token", user="alice")
        sent = [(r.method, r.path, r.body) for r in self.gateway.requests]
        self.assertEqual(sent[:3], [
            ("POST", "/v1/grants", {"resource": "projects/p/environments/e",
                                    "subject": "users/bob", "permission": "READ"}),
            ("POST", "/v1/projects/p/roleBindings", {"subject": "teams/ml", "role": "EDITOR"}),
            ("PATCH", "/v1/teams/ml/quota", {"gpus": 2}),
        ])
        method, path, body = sent[3]
        self.assertEqual((method, path), ("POST", "/v1/users/alice/credentials"))
        self.assertEqual({k: v for k, v in body.items() if k != "requestId"},
                         {"credentialId": "git", "credential": {"type": "git-token"},
                          "secret": "AHNlY3JldA=="})
        with self.assertRaises(ValueError):
            client.grants.create("projects/p", "users/bob", "execute")


if __name__ == "__main__":
    unittest.main()
