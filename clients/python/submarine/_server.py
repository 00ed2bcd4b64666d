"""Which gateway the SDK talks to."""

from __future__ import annotations

import json
import os
from typing import Optional

from submarine.errors import SubmarineError


def default_data_dir() -> str:
    """The data directory `submarine local up` uses by default."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/submarine"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "submarine")
    return os.path.join(os.path.expanduser("~"), ".local", "share", "submarine")


def resolve_server(server: Optional[str] = None, data_dir: Optional[str] = None,
                   logged_in_gateway: Optional[str] = None) -> str:
    """Returns the gateway URL: ``server``, else ``$SUBMARINE_SERVER``, else the ``gatewayUrl``
    of the running local stack in ``data_dir`` (default ``$SUBMARINE_DATA_DIR`` or
    :func:`default_data_dir`), else ``logged_in_gateway`` (the gateway of the CLI's stored
    credentials, like the CLI).

    Raises:
        SubmarineError: status ``FAILED_PRECONDITION`` when no source names a server.
    """
    if server:
        return server.rstrip("/")
    env = os.environ.get("SUBMARINE_SERVER", "")
    if env:
        return env.rstrip("/")
    directory = data_dir or os.environ.get("SUBMARINE_DATA_DIR") or default_data_dir()
    state_file = os.path.join(directory, "state.json")
    try:
        with open(state_file, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = {}
    url = state.get("gatewayUrl") if isinstance(state, dict) else None
    if url and state.get("phase") == "running":
        return str(url).rstrip("/")
    if logged_in_gateway:
        return logged_in_gateway.rstrip("/")
    raise SubmarineError(
        "no Submarine server: pass server=..., set SUBMARINE_SERVER, or start the local stack "
        f"(`submarine local up`; looked in {state_file})",
        status="FAILED_PRECONDITION",
        reason="NO_SERVER",
    )
