"""The HTTP transport every service module shares: JSON over urllib, errors as SubmarineError."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

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


def error_from_response(http_status: int, body: bytes) -> SubmarineError:
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
                                   status=status)
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
    )


def _query_value(value: Any) -> Any:
    # Booleans as the gateway reads them ("true", not Python's "True").
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Transport:
    """Sends JSON requests to one gateway. Thread-safe (holds no connection state)."""

    def __init__(self, base_url: str, timeout: float = 30.0,
                 headers: Optional[Mapping[str, str]] = None,
                 auth: Optional["TokenAuth"] = None) -> None:
        """Args:
            base_url: the gateway, e.g. ``http://127.0.0.1:8080``.
            timeout: seconds per request.
            headers: extra headers for every request.
            auth: supplies "Authorization: Bearer ..." (and refreshes it); none: anonymous.
        """
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers: Dict[str, str] = dict(headers or {})
        self.auth = auth

    def _refresh(self, refresh_token: str) -> Dict[str, Any]:
        return self.request("POST", "/v1/auth:refresh", body={"refreshToken": refresh_token},
                            authenticate=False)

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                body: Any = None, authenticate: bool = True) -> Any:
        """Sends ``method`` to ``path`` (with ``query`` parameters whose value is not None) and
        returns the decoded JSON response (``{}`` for an empty body). With ``authenticate`` the
        request carries the token of ``auth``; a 401 ``TOKEN_EXPIRED`` refreshes stored
        credentials and retries once.

        Raises:
            SubmarineError: for a non-2xx answer (the server's error) or when the server cannot
                be reached (status ``UNAVAILABLE``, http_status 0) or does not answer in time
                (``DEADLINE_EXCEEDED``).
        """
        if not authenticate or self.auth is None:
            return self._send(method, path, query, body, None)
        try:
            return self._send(method, path, query, body, self.auth.header(self._refresh))
        except SubmarineError as e:
            if (e.http_status == 401 and e.reason == "TOKEN_EXPIRED"
                    and self.auth.refresh_after_expiry(self._refresh)):
                return self._send(method, path, query, body, self.auth.header(self._refresh))
            raise

    def _send(self, method: str, path: str, query: Optional[Mapping[str, Any]], body: Any,
              authorization: Optional[str]) -> Any:
        url = self.base_url + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        headers = {"Accept": "application/json", **self.headers}
        if authorization:
            headers["Authorization"] = authorization
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise error_from_response(e.code, e.read()) from None
        except (socket.timeout, TimeoutError):
            raise SubmarineError(f"{method} {url}: timed out after {self.timeout} s",
                                 status="DEADLINE_EXCEEDED") from None
        except urllib.error.URLError as e:
            raise SubmarineError(f"cannot reach {self.base_url}: {e.reason}",
                                 status="UNAVAILABLE") from None
        if not raw:
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise SubmarineError(f"{method} {url}: invalid JSON in the response",
                                 status="INTERNAL") from None
