"""What the SDK tests share: a scripted fake gateway on 127.0.0.1, the build's binaries, a real
local stack, and waiting on a condition with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

# The binaries the stack-backed tests run.
STACK_BINARIES = ("submarine", "submarine-eventbus", "submarine-permission",
                  "submarine-environment", "submarine-experiment", "submarine-task-supervisor",
                  "submarine-gateway")


def bin_dir(*needed: str) -> str:
    """``$SUBMARINE_BIN_DIR``, checked to hold ``needed`` (default: the whole local stack).

    Raises:
        AssertionError: naming what is missing and how to build it. A missing build is a
            failure, never a skip: a suite that skips silently proves nothing.
    """
    directory = os.environ.get("SUBMARINE_BIN_DIR", "")
    names = needed or STACK_BINARIES
    if not directory:
        raise AssertionError("SUBMARINE_BIN_DIR is not set: run the SDK tests through ctest "
                             "(ctest --test-dir build -R python_sdk), which sets it to "
                             "<build>/bin")
    missing = [n for n in names if not os.access(os.path.join(directory, n), os.X_OK)]
    if missing:
        raise AssertionError(f"missing in SUBMARINE_BIN_DIR={directory}: {', '.join(missing)}; "
                             f"build them first: ninja -C <build> {' '.join(missing)}")
    return directory


def wait_for(condition: Callable[[], bool], timeout: float = 30.0,
             what: str = "the condition") -> None:
    """Polls ``condition`` every few milliseconds until it holds.

    Raises:
        AssertionError: when it still does not hold after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)


def lock_waiter_exists(lock_path: str) -> bool:
    """Whether some process is blocked waiting for the flock on ``lock_path`` (a ``->`` line of
    /proc/locks names a blocked waiter with the file's inode)."""
    try:
        inode = os.stat(lock_path).st_ino
        with open("/proc/locks", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return any("->" in line and f":{inode} " in line for line in lines)


def error_body(code: int, status: str, reason: str, message: str) -> Dict[str, Any]:
    """An AIP-193 error body as the gateway sends it."""
    return {"error": {"code": code, "message": message, "status": status,
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                   "reason": reason, "domain": "permission.submarine.io"}]}}


class Answer:
    """One scripted answer: a status, a JSON body (or ``raw`` bytes, e.g. NDJSON lines) and
    headers; or, with ``reset``, a connection reset (RST) instead of any answer; with ``close``
    the connection is closed after answering, without saying so."""

    def __init__(self, status: int = 200, body: Any = None,
                 headers: Optional[Dict[str, str]] = None, reset: bool = False,
                 close: bool = False, raw: Optional[bytes] = None) -> None:
        self.status = status
        self.body = {} if body is None else body
        self.raw = raw
        self.headers = dict(headers or {})
        self.reset = reset
        self.close = close


class Request:
    """What the fake gateway received."""

    def __init__(self, method: str, target: str, body: Any, headers: Dict[str, str],
                 client_port: int) -> None:
        self.method = method
        self.target = target
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        self.body = body
        self.headers = headers
        self.authorization = headers.get("authorization", "")
        self.client_port = client_port

    @property
    def request_id(self) -> str:
        """The request id, wherever it travelled ("" if none)."""
        if isinstance(self.body, dict) and self.body.get("requestId"):
            return str(self.body["requestId"])
        return self.query.get("requestId", "")


class FakeGateway:
    """A gateway on 127.0.0.1 (random port) speaking keep-alive HTTP/1.1. It answers from
    ``answers`` in order (a (status, body) tuple or an :class:`Answer`), or through ``handler``
    when set, records every request, and counts the connections it closed. Thread-safe."""

    def __init__(self) -> None:
        self.answers: List[Any] = []
        self.requests: List[Request] = []
        self.handler: Optional[Callable[[Request], Answer]] = None
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, json.loads(raw) if raw else None,
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.client_address[1])
                with gateway._lock:
                    gateway.requests.append(request)
                    handler = gateway.handler
                    scripted = gateway.answers.pop(0) if gateway.answers else None
                if handler is not None:
                    answer = handler(request)
                elif scripted is None:
                    answer = Answer(500, {"error": {"message": "unscripted"}})
                else:
                    answer = scripted if isinstance(scripted, Answer) else Answer(*scripted)
                if answer.reset:
                    # SO_LINGER 0: close() sends RST; nothing of an answer goes out.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                data = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                if answer.close:
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def shutdown_request(self, request: Any) -> None:
                super().shutdown_request(request)
                with gateway._lock:
                    gateway.closed_connections += 1

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (timed out, reset) is what some tests do

        self.closed_connections = 0
        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def submarine_cli(args: List[str], data_dir: str, timeout: float = 300,
                  env: Optional[Dict[str, str]] = None) -> str:
    """Runs the CLI on ``data_dir`` (``env`` added to this process' environment); returns its
    output or fails with it and the tail of the stack's supervisor log."""
    full_env = {k: v for k, v in os.environ.items() if k != "SUBMARINE_SERVER"}
    full_env.update(env or {})
    result = subprocess.run(
        [os.path.join(bin_dir(), "submarine"), *args, "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        env=full_env, check=False)
    if result.returncode != 0:
        logs = os.path.join(data_dir, "logs", "supervisor.log")
        tail = open(logs, encoding="utf-8").read()[-3000:] if os.path.exists(logs) else ""
        raise AssertionError(f"submarine {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{tail}")
    return result.stdout


class LocalStack:
    """A real local stack (``submarine local up``) in a fresh data dir under /tmp (as root,
    PostgreSQL runs as ``postgres``, which cannot enter /root), with ``client`` logged in as its
    first admin. ``env`` is added to the environment ``local up`` runs in. No credentials of
    the person running the tests are picked up. ``close()`` stops it and removes the data dir."""

    def __init__(self, env: Optional[Dict[str, str]] = None) -> None:
        from submarine import Client

        bin_dir()  # fails, naming what to build, when the binaries are missing
        self.data_dir = tempfile.mkdtemp(prefix="submarine-sdk-", dir="/tmp")
        try:
            submarine_cli(["local", "up", "--gateway-port", "0"], self.data_dir, env=env)
        except BaseException:
            self.close()
            raise
        os.environ.pop("SUBMARINE_SERVER", None)
        os.environ.pop("SUBMARINE_TOKEN", None)
        os.environ["SUBMARINE_CONFIG_DIR"] = os.path.join(self.data_dir, "client-config")
        # The server comes from the stack's state file; the first admin password from the file
        # the permission service wrote at its first start.
        with open(os.path.join(self.data_dir, "secrets", "admin.password"),
                  encoding="utf-8") as f:
            self.admin_password = f.read().strip()
        self.client = Client(data_dir=self.data_dir)
        self.client.login("admin", self.admin_password)

    def close(self) -> None:
        try:
            submarine_cli(["local", "down"], self.data_dir)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def free_port() -> Tuple[str, int]:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1", s.getsockname()[1]


def close_sdk_connections() -> None:
    """Closes the keep-alive connections the SDK holds for this thread (tests call it when their
    fake gateway goes away, so no socket outlives its test)."""
    from submarine import _http  # the SDK's per-thread connection pool

    pool = getattr(_http._connections, "pool", None) or {}
    for conn in pool.values():
        conn.close()
    pool.clear()
