"""The entry point of the SDK."""

from __future__ import annotations

from typing import Mapping, Optional

from submarine._http import Transport
from submarine._server import resolve_server
from submarine.environments import Environments
from submarine.errors import SubmarineError


class Client:
    """A Submarine server, reached through its gateway's REST API.

    Example::

        client = Client("http://127.0.0.1:8080")
        client.environments.create("my-env", image="python:3.11")

    Args:
        server: gateway URL; default ``$SUBMARINE_SERVER``, else the running local stack.
        project: the project every call addresses (default ``"default"``).
        timeout: seconds per HTTP request.
        headers: extra headers for every request (e.g. ``{"Authorization": "Bearer ..."}``).
        data_dir: the local stack's data directory to read the gateway URL from.
    """

    def __init__(self, server: Optional[str] = None, *, project: str = "default",
                 timeout: float = 30.0, headers: Optional[Mapping[str, str]] = None,
                 data_dir: Optional[str] = None) -> None:
        self.server = resolve_server(server, data_dir)
        self.project = project
        self._transport = Transport(self.server, timeout=timeout, headers=headers)
        self.environments = Environments(self._transport, project)

    def ready(self) -> bool:
        """True if the gateway answers ``/readyz`` with 200 (every backend serving)."""
        try:
            self._transport.request("GET", "/readyz")
        except SubmarineError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Client(server={self.server!r}, project={self.project!r})"
