"""Python SDK of the Submarine ML platform (standard library only).

``Client`` is the entry point; every failed call raises ``SubmarineError``.
"""

from submarine.client import Client
from submarine.environments import EnvironmentPage, Environments
from submarine.errors import SubmarineError

__all__ = ["Client", "EnvironmentPage", "Environments", "SubmarineError"]
__version__ = "0.1.0"
