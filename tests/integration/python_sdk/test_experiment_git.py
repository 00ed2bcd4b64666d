"""Experiments with code in a private git repository, against a real local stack: the token is
stored once in the credential store (``client.credentials``), named by the spec
(``code.git.credential``), handed to git through a throwaway askpass script and never shown in
the experiment or its log. The repository is served over git's smart HTTP protocol (``git http-backend``)
by a small server in this test that demands HTTP Basic authentication.

Needs ``SUBMARINE_BIN_DIR`` and ``PYTHONPATH`` (set by the ctest registration) and ``git``.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict

from sdk_test_support import LocalStack
from submarine import InvalidArgument

USER, TOKEN = "ci-bot", "tok-" + uuid.uuid4().hex
MESSAGE = "hello from the private repository"


def _git(*args: str, cwd: str) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class _SmartGitServer(BaseHTTPRequestHandler):
    """git's smart HTTP protocol (``git http-backend`` as CGI) for the repositories under
    ``root``, only to USER:TOKEN — as GitHub or GitLab answer a private repository."""

    root = ""

    def _serve(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(os.environ, GIT_PROJECT_ROOT=self.root, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_USER=USER)
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve  # noqa: N815 (http.server's names)
    do_POST = _serve  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


class ExperimentGitCredentialTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls) -> None:
        cls.work = tempfile.mkdtemp(prefix="submarine-git-", dir="/tmp")
        source = os.path.join(cls.work, "source")
        os.makedirs(source)
        with open(os.path.join(source, "message.txt"), "w", encoding="utf-8") as f:
            f.write(MESSAGE + "\n")
        _git("init", "--quiet", "--initial-branch", "main", cwd=source)
        _git("add", "message.txt", cwd=source)
        _git("commit", "--quiet", "-m", "first", cwd=source)
        bare = os.path.join(cls.work, "served", "repo.git")
        _git("clone", "--quiet", "--bare", source, bare, cwd=cls.work)
        _SmartGitServer.root = os.path.join(cls.work, "served")
        cls.http = ThreadingHTTPServer(("127.0.0.1", 0), _SmartGitServer)
        threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.http.server_address[1]}/repo.git"

        cls.stack = LocalStack()
        cls.client = cls.stack.client
        cls.client.credentials.create("git-token", f"{USER}:{TOKEN}", type="git-token")

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.stack is not None:
            cls.stack.close()
        cls.http.shutdown()
        shutil.rmtree(cls.work, ignore_errors=True)

    def spec(self, **git: str) -> Dict[str, Any]:
        return {"meta": {"framework": "plain",
                         "cmd": "cat message.txt; env | grep -c GIT_TOKEN || true"},
                "code": {"git": {"url": self.url, "branch": "main", **git}},
                "spec": {"Worker": {"replicas": 1}}}

    def test_a_private_repository_is_cloned_with_the_stored_credential(self) -> None:
        created = self.client.experiments.create(self.spec(credential="git-token"))
        done = self.client.experiments.wait(created.name, timeout=120)
        log = self.client.experiments.logs(created.name)
        self.assertEqual(done.state, "SUCCEEDED", f"{done.state_reason}\n{log}")
        self.assertIn(MESSAGE, log)
        self.assertIn(f"submarine: code {self.url} at ", log)
        # The command does not see the git token, and neither the log nor the experiment holds it.
        self.assertIn("\n0\n", log)
        self.assertNotIn(TOKEN, log)
        self.assertNotIn(TOKEN, str(self.client.experiments.get(created.name)))

    def test_without_the_credential_the_clone_is_refused(self) -> None:
        created = self.client.experiments.create(self.spec())
        done = self.client.experiments.wait(created.name, timeout=120)
        self.assertEqual(done.state, "FAILED")
        self.assertIn("exit code 128", done.state_reason)

    def test_an_unknown_credential_is_a_400_naming_the_field_and_nothing_is_stored(self) -> None:
        before = len(list(self.client.experiments.list()))
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.experiments.create(self.spec(credential="no-such-token"))
        self.assertEqual(ctx.exception.http_status, 400)
        self.assertIn("code.git.credential", str(ctx.exception))
        self.assertIn("users/admin/credentials/no-such-token", str(ctx.exception))
        self.assertEqual(len(list(self.client.experiments.list())), before)

    def test_a_malformed_credential_is_a_400_naming_the_field(self) -> None:
        with self.assertRaises(Exception) as ctx:
            self.client.experiments.create(self.spec(credential="Not A Name"))
        self.assertIn("credential", str(ctx.exception))
        self.assertEqual(getattr(ctx.exception, "http_status", None), 400)


if __name__ == "__main__":
    unittest.main()
