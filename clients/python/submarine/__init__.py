"""Python SDK of the Submarine ML platform (standard library only).

``Client`` is the entry point; every failed call raises ``SubmarineError`` (or one of its
subclasses in :mod:`submarine.errors`, e.g. ``PermissionDenied``), carrying the server's AIP-193
``reason``.
"""

from submarine.client import Client
from submarine.environments import EnvironmentPage, Environments
from submarine.errors import (AlreadyExists, InvalidArgument, NotFound, PermissionDenied,
                              ResourceExhausted, SubmarineError, Unauthenticated)

__all__ = [
    "AlreadyExists", "Client", "EnvironmentPage", "Environments", "InvalidArgument", "NotFound",
    "PermissionDenied", "ResourceExhausted", "SubmarineError", "Unauthenticated",
]
__version__ = "0.2.0"
