"""The HTTP transport every service module shares: JSON over keep-alive HTTP/1.1 connections,
retries of what is safe to repeat, errors as SubmarineError.

Connections: one ``http.client`` connection per server (scheme, host, port) per thread, kept open
between requests. One the server has closed meanwhile (an idle timeout, ``Connection: close``) is
noticed before it is used and replaced by a new one.

Retries: a request that fails with UNAVAILABLE (connection refused or reset, HTTP 503) is sent
again per :class:`RetryPolicy` if it is a GET or carries a ``requestId`` (in its query or JSON
body): the server answers a repeated request id with its first answer (AIP-155), so a mutation
is never applied twice. Nothing else is ever retried.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import select
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

from submarine.errors import SubmarineError, error_class

if TYPE_CHECKING:
    from submarine._auth import TokenAuth

_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

# Fallback gRPC names for HTTP statuses when the body carries no error object (AIP-193).
_STATUS_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def new_request_id() -> str:
    """A fresh request id (a random UUID) for one logical mutation."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class RetryPolicy:
    """How a call that fails with UNAVAILABLE is retried (GETs, and mutations carrying a request
    id; nothing else).

    Before retry n (1, 2, ...) the client waits what the server's ``Retry-After`` header asks,
    else ``min(max_backoff, initial_backoff * 2**(n-1))`` seconds with equal jitter (a uniformly
    random point in its upper half). It stops after ``max_attempts`` attempts, or instead of
    starting a wait that would end more than ``max_elapsed`` seconds after the first attempt
    began, and raises the last failure.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    max_elapsed: float = 30.0

    def backoff(self, retry: int, jitter: float) -> float:
        """The wait before retry ``retry`` (1-based) for a ``jitter`` in [0, 1]."""
        cap = min(self.max_backoff, self.initial_backoff * 2 ** (retry - 1))
        return cap / 2 + jitter * (cap - cap / 2)


def update_body(name: str, fields: Mapping[str, Any], json_names: Mapping[str, str],
                to_json: Callable[[str, Any], Any],
                etag: Optional[str] = None) -> Tuple[Dict[str, Any], str]:
    """The body and update mask of a PATCH of ``name`` changing ``fields`` (snake_case argument
    names, mapped to JSON by ``json_names``; a field set to None is cleared). TypeError for an
    unknown field or none at all."""
    unknown = sorted(set(fields) - set(json_names))
    if unknown:
        raise TypeError(f"update() got unknown fields: {', '.join(unknown)}; "
                        f"updatable: {', '.join(sorted(json_names))}")
    if not fields:
        raise TypeError("update() needs at least one field to change")
    body: Dict[str, Any] = {"name": name}
    if etag:
        body["etag"] = etag
    for arg, value in fields.items():
        if value is not None:
            body[json_names[arg]] = to_json(arg, value)
    return body, ",".join(json_names[arg] for arg in fields)


def retry_after_seconds(value: Optional[str], now: float) -> Optional[float]:
    """A Retry-After header value (delta-seconds or an HTTP-date, relative to ``now``) in
    seconds; None when absent or unreadable. Never negative."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def error_from_response(http_status: int, body: bytes,
                        retry_after: Optional[float] = None) -> SubmarineError:
    """Builds the SubmarineError for a non-2xx response.

    Reads ``{"error": {"code", "message", "status", "details": [ErrorInfo...]}}``; any other body
    becomes the message, with the status derived from the HTTP status.
    """
    text = body.decode("utf-8", errors="replace")
    status = _STATUS_FOR_HTTP.get(http_status, "INTERNAL" if http_status >= 500 else "UNKNOWN")
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return error_class(status)(text or f"HTTP {http_status}", http_status=http_status,
                                   status=status, retry_after=retry_after)
    details = error.get("details") or []
    reason, domain, metadata = "", "", {}
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == _ERROR_INFO_TYPE:
            reason = detail.get("reason", "")
            domain = detail.get("domain", "")
            metadata = detail.get("metadata") or {}
            break
    status = error.get("status") or status
    return error_class(status)(
        error.get("message", text),
        http_status=http_status,
        status=status,
        reason=reason,
        domain=domain,
        metadata=metadata,
        details=details,
        retry_after=retry_after,
    )


def _query_value(value: Any) -> Any:
    # Booleans as the gateway reads them ("true", not Python's "True").
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _carries_request_id(query: Optional[Mapping[str, Any]], body: Any) -> bool:
    return bool((query or {}).get("requestId")) or (
        isinstance(body, dict) and bool(body.get("requestId")))


class _ThreadConnections(Dict[Tuple[str, str, int], http.client.HTTPConnection]):
    """One thread's open connections, (scheme, host, port) -> connection. Closed when the thread
    ends (its thread-local data goes away), so no socket waits for the garbage collector."""

    def __del__(self) -> None:
        for conn in self.values():
            conn.close()


# `pool`: this thread's _ThreadConnections.
_connections = threading.local()


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection was closed by the server: it is readable (EOF, or bytes no
    request asked for), so it must not carry another request."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _connection(scheme: str, host: str, port: int,
                timeout: float) -> http.client.HTTPConnection:
    """This thread's connection to (scheme, host, port), open or to be opened by the next
    request."""
    pool = getattr(_connections, "pool", None)
    if pool is None:
        pool = _connections.pool = _ThreadConnections()
    key = (scheme, host, port)
    conn = pool.get(key)
    if conn is None:
        factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = factory(host, port, timeout=timeout)
        pool[key] = conn
    elif conn.sock is not None and _dropped(conn.sock):
        conn.close()  # the next request reconnects
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    return conn


class Transport:
    """Sends JSON requests to one gateway. Thread-safe: each thread has its own connection."""

    def __init__(self, base_url: str, timeout: float = 30.0,
                 headers: Optional[Mapping[str, str]] = None,
                 auth: Optional["TokenAuth"] = None,
                 retry: Optional[RetryPolicy] = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = random.random) -> None:
        """Args:
            base_url: the gateway, e.g. ``http://127.0.0.1:8080`` (a path prefix is kept).
            timeout: seconds per request.
            headers: extra headers for every request.
            auth: supplies "Authorization: Bearer ..." (and refreshes it); none: anonymous.
            retry: how UNAVAILABLE is retried (default :class:`RetryPolicy()`).
            sleep, clock, jitter: waiting, a monotonic clock and a uniform random number in
                [0, 1) for retries (tests inject them).
        """
        self.base_url = base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SubmarineError(f"not an http(s) server URL: {base_url!r}",
                                 status="INVALID_ARGUMENT")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path
        self.timeout = timeout
        self.headers: Dict[str, str] = dict(headers or {})
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def close(self) -> None:
        """Closes this thread's connection to the gateway (the next request opens a new one)."""
        pool = getattr(_connections, "pool", None)
        conn = pool.pop((self._scheme, self._host, self._port), None) if pool else None
        if conn is not None:
            conn.close()

    def _refresh(self, refresh_token: str) -> Dict[str, Any]:
        return self.request("POST", "/v1/auth:refresh",
                            body={"refreshToken": refresh_token, "requestId": new_request_id()},
                            authenticate=False)

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                body: Any = None, authenticate: bool = True) -> Any:
        """Sends ``method`` to ``path`` (with ``query`` parameters whose value is not None) and
        returns the decoded JSON response (``{}`` for an empty body). With ``authenticate`` the
        request carries the token of ``auth``; a 401 ``TOKEN_EXPIRED`` refreshes stored
        credentials and sends it once more. GETs and requests carrying a ``requestId`` are
        retried on UNAVAILABLE (see :class:`RetryPolicy`).

        Raises:
            SubmarineError: for a non-2xx answer (the server's error) or when the server cannot
                be reached (status ``UNAVAILABLE``, http_status 0) or does not answer in time
                (``DEADLINE_EXCEEDED``).
        """
        retryable = method == "GET" or _carries_request_id(query, body)
        if not authenticate or self.auth is None:
            return self._exchange(method, path, query, body, None, retryable)
        authorization = self.auth.header(self._refresh)
        try:
            return self._exchange(method, path, query, body, authorization, retryable)
        except SubmarineError as e:
            rejected = (authorization or "")[len("Bearer "):]
            if (e.http_status == 401 and self.auth.renewable(e.reason)
                    and self.auth.refresh_after_expiry(self._refresh, rejected)):
                return self._exchange(method, path, query, body,
                                      self.auth.header(self._refresh), retryable)
            raise

    def stream(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
               authenticate: bool = True) -> Iterator[Any]:
        """Calls a server-streaming method: yields each message of its NDJSON answer, decoded,
        as it arrives. The stream has its own connection (the gateway closes it at the end) and
        no read timeout once it has started: a followed log may stay quiet for long. Tokens are
        handled as by :meth:`request`; nothing is retried. Closing the generator early closes
        the connection, which cancels the call on the server.

        Raises:
            SubmarineError: the server's error answer, or the error line that ends a stream after
                its first message; ``UNAVAILABLE`` when the connection breaks.
        """
        conn, response = self._open_authenticated(method, path, query, authenticate)
        try:
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise SubmarineError(f"lost the stream from {self.base_url}: "
                                         f"{e or type(e).__name__}", status="UNAVAILABLE") from None
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    message = json.loads(line.decode("utf-8"))
                except ValueError:
                    raise SubmarineError(f"{method} {self.base_url}{path}: invalid JSON in the "
                                         "stream", status="INTERNAL") from None
                if isinstance(message, dict) and set(message) == {"error"}:
                    code = message["error"].get("code", 500) if isinstance(
                        message["error"], dict) else 500
                    raise error_from_response(int(code), line)
                yield message
        finally:
            conn.close()

    def stream_bytes(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                     authenticate: bool = True, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Calls a method whose answer is a raw body (google.api.HttpBody): yields its bytes
        as they arrive, in pieces of at most ``chunk_size``, on a connection of its own with no
        read timeout once it has started, as :meth:`stream`.

        Raises:
            SubmarineError: the server's error answer; ``UNAVAILABLE`` when the connection
                breaks or the body is cut short (the server failed after its first bytes).
        """
        conn, response = self._open_authenticated(method, path, query, authenticate)
        try:
            while True:
                try:
                    data = response.read1(chunk_size)
                except (OSError, http.client.HTTPException) as e:
                    raise SubmarineError(f"{method} {self.base_url}{path}: the answer was cut "
                                         f"short: {e or type(e).__name__}",
                                         status="UNAVAILABLE") from None
                if not data:
                    return
                yield data
        finally:
            conn.close()

    def _open_authenticated(self, method: str, path: str, query: Optional[Mapping[str, Any]],
                            authenticate: bool
                            ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Opens a stream, refreshing stored credentials once on a 401 TOKEN_EXPIRED."""
        authorization = None
        if authenticate and self.auth is not None:
            authorization = self.auth.header(self._refresh)
        try:
            return self._open_stream(method, path, query, authorization)
        except SubmarineError as e:
            rejected = (authorization or "")[len("Bearer "):]
            if (authorization and e.http_status == 401 and self.auth.renewable(e.reason)
                    and self.auth.refresh_after_expiry(self._refresh, rejected)):
                return self._open_stream(method, path, query, self.auth.header(self._refresh))
            raise

    def _open_stream(self, method: str, path: str, query: Optional[Mapping[str, Any]],
                     authorization: Optional[str]
                     ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        target = self._prefix + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/x-ndjson", **self.headers}
        if authorization:
            headers["Authorization"] = authorization
        factory = (http.client.HTTPSConnection if self._scheme == "https"
                   else http.client.HTTPConnection)
        conn = factory(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(method, target, headers=headers)
            response = conn.getresponse()
            if not 200 <= response.status < 300:
                raw = response.read()
                conn.close()
                raise error_from_response(
                    response.status, raw,
                    retry_after_seconds(response.getheader("Retry-After"), time.time()))
        except (socket.timeout, TimeoutError):
            conn.close()
            raise SubmarineError(f"{method} {self.base_url}{target}: timed out after "
                                 f"{self.timeout} s", status="DEADLINE_EXCEEDED") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise SubmarineError(f"cannot reach {self.base_url}: {e or type(e).__name__}",
                                 status="UNAVAILABLE") from None
        if conn.sock is not None:
            conn.sock.settimeout(None)
        return conn, response

    def _exchange(self, method: str, path: str, query: Optional[Mapping[str, Any]], body: Any,
                  authorization: Optional[str], retryable: bool) -> Any:
        target = self._prefix + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        data = None
        headers = {"Accept": "application/json", **self.headers}
        if authorization:
            headers["Authorization"] = authorization
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        start = self._clock()
        attempt = 1
        while True:
            try:
                return self._send(method, target, data, headers)
            except SubmarineError as e:
                if (not retryable or e.status != "UNAVAILABLE"
                        or attempt >= self.retry.max_attempts):
                    raise
                wait = (e.retry_after if e.retry_after is not None
                        else self.retry.backoff(attempt, self._jitter()))
                if self._clock() - start + wait > self.retry.max_elapsed:
                    raise
                self._sleep(wait)
                attempt += 1

    def _send(self, method: str, target: str, data: Optional[bytes],
              headers: Mapping[str, str]) -> Any:
        conn = _connection(self._scheme, self._host, self._port, self.timeout)
        try:
            conn.request(method, target, body=data, headers=dict(headers))
            response = conn.getresponse()
            raw = response.read()
        except (socket.timeout, TimeoutError):
            conn.close()
            raise SubmarineError(f"{method} {self.base_url}{target}: timed out after "
                                 f"{self.timeout} s", status="DEADLINE_EXCEEDED") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise SubmarineError(f"cannot reach {self.base_url}: {e or type(e).__name__}",
                                 status="UNAVAILABLE") from None
        if not 200 <= response.status < 300:
            raise error_from_response(
                response.status, raw,
                retry_after_seconds(response.getheader("Retry-After"), time.time()))
        if not raw:
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise SubmarineError(f"{method} {self.base_url}{target}: invalid JSON in the "
                                 "response", status="INTERNAL") from None
