"""Python SDK of the Submarine ML platform (standard library only).

``Client`` is the entry point. Calls return the typed dataclasses of :mod:`submarine.resources`
(``Environment``, ``User``, ``Team``, ...); every failed call raises ``SubmarineError`` (or one of
its subclasses in :mod:`submarine.errors`, e.g. ``PermissionDenied``), carrying the server's
AIP-193 ``reason``.
"""

from submarine._http import RetryPolicy
from submarine.client import Client
from submarine.clusters import Clusters
from submarine.environments import EnvironmentPage, Environments
from submarine.errors import (AlreadyExists, InvalidArgument, NotFound, PermissionDenied,
                              ResourceExhausted, SubmarineError, Unauthenticated)
from submarine.resources import (ApiToken, AuditEvent, ComputeCluster, CreatedApiToken, Credential,
                                 Environment,
                                 Grant, KernelSpec, Lease, Project, Resource, Resources,
                                 RoleBinding, Team, TeamMember, Usage, User)

__all__ = [
    "AlreadyExists", "ApiToken", "AuditEvent", "Client", "Clusters", "ComputeCluster",
    "CreatedApiToken", "Credential",
    "Environment", "EnvironmentPage", "Environments", "Grant", "InvalidArgument", "KernelSpec",
    "Lease", "NotFound", "PermissionDenied", "Project", "Resource", "ResourceExhausted",
    "Resources", "RetryPolicy", "RoleBinding", "SubmarineError", "Team", "TeamMember",
    "Unauthenticated", "Usage", "User",
]
__version__ = "0.3.0"
