"""Errors raised by the Submarine SDK."""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class SubmarineError(Exception):
    """A failed call: the gateway's error, or a transport failure.

    Attributes:
        http_status: HTTP status code of the response (0 if the server was not reached).
        status: canonical gRPC status name, e.g. ``"NOT_FOUND"`` or ``"ABORTED"``.
        reason: ``google.rpc.ErrorInfo.reason`` when the server sent one, else ``""``.
        domain: ``google.rpc.ErrorInfo.domain`` when the server sent one, else ``""``.
        metadata: ``google.rpc.ErrorInfo.metadata`` (dynamic values of the message).
        message: the server's message.
        details: the raw ``details`` list of the error body.
        retry_after: seconds the server's ``Retry-After`` header asked to wait, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 0,
        status: str = "UNKNOWN",
        reason: str = "",
        domain: str = "",
        metadata: Optional[Dict[str, str]] = None,
        details: Optional[List[Any]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.status = status
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.details = list(details or [])
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.http_status})" if self.http_status else ""
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{self.status}{where}{reason}: {self.message}"


class Unauthenticated(SubmarineError):
    """HTTP 401: no token, or an invalid, expired or revoked one."""


class PermissionDenied(SubmarineError):
    """HTTP 403: the caller may not do this (also when the resource does not exist)."""


class NotFound(SubmarineError):
    """HTTP 404."""


class AlreadyExists(SubmarineError):
    """HTTP 409 ALREADY_EXISTS."""


class InvalidArgument(SubmarineError):
    """HTTP 400 INVALID_ARGUMENT: ``reason`` and ``metadata["field"]`` say what is wrong."""


class ResourceExhausted(SubmarineError):
    """HTTP 429: a quota would be exceeded (``metadata`` names what is missing)."""


_CLASSES = {
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "INVALID_ARGUMENT": InvalidArgument,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
}


def error_class(status: str) -> type:
    """The SubmarineError subclass for a gRPC status name (SubmarineError itself for others)."""
    return _CLASSES.get(status, SubmarineError)
