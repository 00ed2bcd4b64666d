"""Users, teams, projects, role bindings, grants, API tokens, quotas, credentials and the audit
log: the permission service's REST API (``/v1/users``, ``/v1/teams``, ``/v1/projects``, ...).

Obtain these as attributes of :class:`submarine.Client` (``client.users``, ``client.teams``, ...).
Names may be given as ids (``"alice"``) or full resource names (``"users/alice"``). Resources are
returned as the dataclasses of :mod:`submarine.resources`. Roles are ``"viewer"``, ``"editor"``
and ``"admin"``; permissions ``"read"``, ``"write"`` and ``"admin"``; team roles ``"member"``,
``"maintainer"`` and ``"owner"`` (the proto enum names are accepted too).

Every mutation takes ``request_id`` (default: a fresh UUID per call) and sends it where the RPC's
HTTP mapping puts it — in the JSON body of ``body: "*"`` RPCs, else in the query — so retries
after a connection failure or a 503 are answered with the first answer instead of being applied
twice.
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Dict, Iterator, List, Optional, Type, TypeVar, Union

from submarine._http import Transport, new_request_id
from submarine.resources import (ApiToken, AuditEvent, CreatedApiToken, Credential, Grant, Lease,
                                 Project, Resource, RoleBinding, Team, TeamMember, Usage, User)

_R = TypeVar("_R", bound=Resource)

_ROLES = {"viewer": "VIEWER", "editor": "EDITOR", "admin": "PROJECT_ADMIN",
          "project_admin": "PROJECT_ADMIN"}
_PERMISSIONS = {"read": "READ", "write": "WRITE", "admin": "ADMIN"}
_TEAM_ROLES = {"member": "MEMBER", "maintainer": "MAINTAINER", "owner": "OWNER"}
_LIMITS = {"cpu_millis": "cpuMillis", "memory_mib": "memoryMib", "gpus": "gpus",
           "experiments": "experiments", "notebooks": "notebooks",
           "serving_replicas": "servingReplicas"}


def _full(prefix: str, name: str) -> str:
    return name if name.startswith(prefix) else prefix + name


def _enum(table: Dict[str, str], value: str, what: str) -> str:
    key = value.lower()
    if key in table:
        return table[key]
    if value in table.values():
        return value
    raise ValueError(f"unknown {what} {value!r}; use one of: {', '.join(sorted(table))}")


def _owner(owner: str) -> str:
    """Quota owners: "users/x" or "teams/x"; a bare name is a user."""
    if "/" not in owner:
        return "users/" + owner
    if owner.startswith(("users/", "teams/")):
        return owner
    raise ValueError(f"{owner!r} is neither users/NAME nor teams/NAME")


def _rid(request_id: Optional[str]) -> str:
    return request_id or new_request_id()


def _pages(transport: Transport, path: str, key: str, cls: Type[_R],
           query: Optional[Dict[str, Any]] = None) -> Iterator[_R]:
    token: Optional[str] = None
    while True:
        page = transport.request("GET", path, query={**(query or {}), "pageToken": token})
        for item in page.get(key, []):
            yield cls.from_json(item)
        token = page.get("nextPageToken") or None
        if not token:
            return


def _items(response: Dict[str, Any], key: str, cls: Type[_R]) -> List[_R]:
    return [cls.from_json(item) for item in response.get(key, [])]


class _Api:
    def __init__(self, transport: Transport, whoami: Callable[[], str]) -> None:
        self._transport = transport
        self._whoami = whoami

    def _user(self, user: Optional[str]) -> str:
        return _full("users/", user) if user else "users/" + self._whoami()


class Users(_Api):
    """``/v1/users``. Creating, deleting and making admins needs a platform admin."""

    def me(self) -> User:
        """The caller."""
        return User.from_json(self._transport.request("GET", "/v1/users:me"))

    def get(self, name: str) -> User:
        return User.from_json(self._transport.request("GET", "/v1/" + _full("users/", name)))

    def list(self, *, filter: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[User]:
        """Every user matching ``filter`` (e.g. ``'admin = "true"'``)."""
        return _pages(self._transport, "/v1/users", "users", User,
                      {"filter": filter, "pageSize": page_size})

    def create(self, user_id: str, *, password: str, display_name: Optional[str] = None,
               email: Optional[str] = None, admin: Optional[bool] = None,
               request_id: Optional[str] = None) -> User:
        """Creates ``users/{user_id}`` with an initial password (12 to 1024 bytes)."""
        user: Dict[str, Any] = {}
        if display_name is not None:
            user["displayName"] = display_name
        if email is not None:
            user["email"] = email
        if admin is not None:
            user["admin"] = admin
        return User.from_json(self._transport.request(
            "POST", "/v1/users", body={"userId": user_id, "user": user, "password": password,
                                       "requestId": _rid(request_id)}))

    def update(self, name: str, *, display_name: Optional[str] = None,
               email: Optional[str] = None, disabled: Optional[bool] = None,
               admin: Optional[bool] = None, request_id: Optional[str] = None) -> User:
        """Changes the given fields only (users may change their own display name and email)."""
        full = _full("users/", name)
        body: Dict[str, Any] = {"name": full}
        for key, value in (("displayName", display_name), ("email", email),
                           ("disabled", disabled), ("admin", admin)):
            if value is not None:
                body[key] = value
        mask = ",".join(k for k in body if k != "name")
        if not mask:
            raise TypeError("update() needs at least one field to change")
        return User.from_json(self._transport.request(
            "PATCH", "/v1/" + full, query={"updateMask": mask, "requestId": _rid(request_id)},
            body=body))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> None:
        """Deletes the user and revokes every token of theirs."""
        self._transport.request("DELETE", "/v1/" + _full("users/", name),
                                query={"requestId": _rid(request_id)})

    def set_password(self, name: str, password: str, current_password: Optional[str] = None,
                     *, request_id: Optional[str] = None) -> None:
        """Changes a password; one's own needs ``current_password`` (admins reset anyone's)."""
        body: Dict[str, Any] = {"password": password, "requestId": _rid(request_id)}
        if current_password is not None:
            body["currentPassword"] = current_password
        self._transport.request("POST", f"/v1/{_full('users/', name)}:setPassword", body=body)


class Teams(_Api):
    """``/v1/teams``: teams and their members."""

    def list(self, *, page_size: Optional[int] = None) -> Iterator[Team]:
        return _pages(self._transport, "/v1/teams", "teams", Team, {"pageSize": page_size})

    def get(self, name: str) -> Team:
        return Team.from_json(self._transport.request("GET", "/v1/" + _full("teams/", name)))

    def create(self, team_id: str, *, display_name: Optional[str] = None,
               description: Optional[str] = None, request_id: Optional[str] = None) -> Team:
        """Creates ``teams/{team_id}``; the caller becomes its owner."""
        team = {k: v for k, v in (("displayName", display_name), ("description", description))
                if v is not None}
        return Team.from_json(self._transport.request(
            "POST", "/v1/teams",
            body={"teamId": team_id, "team": team, "requestId": _rid(request_id)}))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> None:
        self._transport.request("DELETE", "/v1/" + _full("teams/", name),
                                query={"requestId": _rid(request_id)})

    def add_member(self, team: str, user: str, role: str = "member", *,
                   request_id: Optional[str] = None) -> TeamMember:
        """Adds a member, or changes a member's role."""
        return TeamMember.from_json(self._transport.request(
            "POST", f"/v1/{_full('teams/', team)}/members",
            query={"requestId": _rid(request_id)},
            body={"user": _full("users/", user), "role": _enum(_TEAM_ROLES, role, "team role")}))

    def remove_member(self, team: str, user: str, *, request_id: Optional[str] = None) -> None:
        self._transport.request(
            "DELETE", f"/v1/{_full('teams/', team)}/members/{_full('users/', user)}",
            query={"requestId": _rid(request_id)})

    def members(self, team: str) -> List[TeamMember]:
        """Every member, ordered by username."""
        return _items(self._transport.request("GET", f"/v1/{_full('teams/', team)}/members"),
                      "members", TeamMember)


class Projects(_Api):
    """``/v1/projects`` and their role bindings."""

    def list(self, *, page_size: Optional[int] = None) -> Iterator[Project]:
        """The projects the caller can read."""
        return _pages(self._transport, "/v1/projects", "projects", Project,
                      {"pageSize": page_size})

    def get(self, name: str) -> Project:
        return Project.from_json(
            self._transport.request("GET", "/v1/" + _full("projects/", name)))

    def create(self, project_id: str, *, display_name: Optional[str] = None,
               description: Optional[str] = None, owner: Optional[str] = None,
               default_compute_cluster: Optional[str] = None,
               request_id: Optional[str] = None) -> Project:
        """Creates ``projects/{project_id}`` owned by ``owner`` (``users/x`` or ``teams/x``;
        default the caller). ``default_compute_cluster`` (a cluster id or
        ``computeClusters/{id}``) is where its experiments run when their spec names none."""
        project = {k: v for k, v in (("displayName", display_name),
                                     ("description", description), ("owner", owner),
                                     ("defaultComputeCluster", default_compute_cluster))
                   if v is not None}
        return Project.from_json(self._transport.request(
            "POST", "/v1/projects",
            body={"projectId": project_id, "project": project, "requestId": _rid(request_id)}))

    def update(self, name: str, *, display_name: Optional[str] = None,
               description: Optional[str] = None, owner: Optional[str] = None,
               default_compute_cluster: Optional[str] = None,
               etag: Optional[str] = None, request_id: Optional[str] = None) -> Project:
        """Changes the given fields only (project admins); ``default_compute_cluster=""`` goes
        back to the platform's default (local). With ``etag``, fails with ``ABORTED`` if the
        project changed since."""
        full = _full("projects/", name)
        fields = {k: v for k, v in (("displayName", display_name),
                                    ("description", description), ("owner", owner),
                                    ("defaultComputeCluster", default_compute_cluster))
                  if v is not None}
        if not fields:
            raise TypeError("update() needs at least one field to change")
        body: Dict[str, Any] = {"name": full, **fields}
        if etag:
            body["etag"] = etag
        return Project.from_json(self._transport.request(
            "PATCH", "/v1/" + full,
            query={"updateMask": ",".join(fields), "requestId": _rid(request_id)}, body=body))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> None:
        self._transport.request("DELETE", "/v1/" + _full("projects/", name),
                                query={"requestId": _rid(request_id)})

    def bind(self, project: str, subject: str, role: str, *,
             request_id: Optional[str] = None) -> RoleBinding:
        """Gives ``subject`` (``users/x``, ``teams/x`` or ``allUsers``) a role on the project
        (replacing the subject's previous binding)."""
        return RoleBinding.from_json(self._transport.request(
            "POST", f"/v1/{_full('projects/', project)}/roleBindings",
            query={"requestId": _rid(request_id)},
            body={"subject": subject, "role": _enum(_ROLES, role, "role")}))

    def bindings(self, project: str) -> List[RoleBinding]:
        return _items(
            self._transport.request("GET", f"/v1/{_full('projects/', project)}/roleBindings"),
            "roleBindings", RoleBinding)

    def unbind(self, project: str, binding_or_subject: str, *,
               request_id: Optional[str] = None) -> None:
        """Removes a role binding, given by name, id or subject."""
        name = binding_or_subject
        if "/roleBindings/" not in name:
            if name == "allUsers" or name.startswith(("users/", "teams/")):
                matches = [b.name for b in self.bindings(project)
                           if b.subject == binding_or_subject]
                if not matches:
                    raise ValueError(f"{binding_or_subject} has no role binding on {project}")
                name = matches[0]
            else:
                name = f"{_full('projects/', project)}/roleBindings/{name}"
        self._transport.request("DELETE", "/v1/" + name, query={"requestId": _rid(request_id)})


class Grants(_Api):
    """``/v1/grants``: sharing one resource (an environment, a notebook...) with a subject."""

    def list(self, resource: str) -> List[Grant]:
        return _items(self._transport.request("GET", "/v1/grants", query={"resource": resource}),
                      "grants", Grant)

    def create(self, resource: str, subject: str, permission: str, *,
               request_id: Optional[str] = None) -> Grant:
        """Grants ``permission`` (read, write, admin) on ``resource`` to ``subject``."""
        return Grant.from_json(self._transport.request(
            "POST", "/v1/grants", query={"requestId": _rid(request_id)},
            body={"resource": resource, "subject": subject,
                  "permission": _enum(_PERMISSIONS, permission, "permission")}))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> None:
        self._transport.request("DELETE", "/v1/" + _full("grants/", name),
                                query={"requestId": _rid(request_id)})


class Tokens(_Api):
    """Long-lived API tokens (``/v1/users/{u}/tokens``); ``user`` defaults to the caller."""

    def list(self, *, user: Optional[str] = None) -> List[ApiToken]:
        return _items(self._transport.request("GET", f"/v1/{self._user(user)}/tokens"),
                      "tokens", ApiToken)

    def create(self, display_name: str = "", *, ttl_seconds: int = 0,
               user: Optional[str] = None, project: Optional[str] = None,
               request_id: Optional[str] = None) -> CreatedApiToken:
        """Returns the token's metadata and its ``secret``, shown only here. With ``project``
        (an id or ``projects/{p}``; needs ``ttl_seconds``, at most 30 days) the token may act
        only on that project's resources."""
        body: Dict[str, Any] = {"displayName": display_name, "ttlSeconds": ttl_seconds,
                                "requestId": _rid(request_id)}
        if project:
            body["scope"] = project if project.startswith("projects/") else f"projects/{project}"
        return CreatedApiToken.from_json(self._transport.request(
            "POST", f"/v1/{self._user(user)}/tokens", body=body))

    def revoke(self, name: str, *, user: Optional[str] = None,
               request_id: Optional[str] = None) -> ApiToken:
        full = name if "/tokens/" in name else f"{self._user(user)}/tokens/{name}"
        return ApiToken.from_json(self._transport.request(
            "DELETE", "/v1/" + full, query={"requestId": _rid(request_id)}))


class Quotas(_Api):
    """Limits, usage and leases (``/v1/{owner}/quota``, ``/v1/{owner}/usage``, ``/v1/leases``).
    Limits are keyword arguments: cpu_millis, memory_mib, gpus, experiments, notebooks,
    serving_replicas."""

    def usage(self, owner: str) -> Usage:
        """Limits (``None``: no limit), use and active leases of ``owner``."""
        return Usage.from_json(self._transport.request("GET", f"/v1/{_owner(owner)}/usage"))

    def set(self, owner: str, *, request_id: Optional[str] = None, **limits: int) -> Usage:
        """Sets explicit limits (admins); limits not given keep following the default. Returns
        the usage under the new limits."""
        unknown = sorted(set(limits) - set(_LIMITS))
        if unknown:
            raise TypeError(f"unknown limits: {', '.join(unknown)}")
        return Usage.from_json(self._transport.request(
            "PATCH", f"/v1/{_owner(owner)}/quota", query={"requestId": _rid(request_id)},
            body={_LIMITS[k]: v for k, v in limits.items()}))

    def leases(self, owner: Optional[str] = None) -> List[Lease]:
        return _items(self._transport.request(
            "GET", "/v1/leases", query={"owner": _owner(owner) if owner else None}),
            "leases", Lease)

    def acquire(self, owner: str, project: str, *, holder: str = "",
                ttl_seconds: Optional[int] = None, request_id: Optional[str] = None,
                **resources: int) -> Lease:
        """Takes the whole request or nothing: ResourceExhausted names what is missing."""
        unknown = sorted(set(resources) - set(_LIMITS))
        if unknown:
            raise TypeError(f"unknown resources: {', '.join(unknown)}")
        body: Dict[str, Any] = {"lease": {
            "owner": _owner(owner), "project": _full("projects/", project), "holder": holder,
            "resources": {_LIMITS[k]: v for k, v in resources.items()}},
            "requestId": _rid(request_id)}
        if ttl_seconds is not None:
            body["ttlSeconds"] = ttl_seconds
        return Lease.from_json(self._transport.request("POST", "/v1/leases", body=body))

    def heartbeat(self, name: str, ttl_seconds: Optional[int] = None, *,
                  request_id: Optional[str] = None) -> Lease:
        body: Dict[str, Any] = {"requestId": _rid(request_id)}
        if ttl_seconds is not None:
            body["ttlSeconds"] = ttl_seconds
        return Lease.from_json(self._transport.request(
            "POST", f"/v1/{_full('leases/', name)}:heartbeat", body=body))

    def release(self, name: str, *, request_id: Optional[str] = None) -> None:
        self._transport.request("DELETE", "/v1/" + _full("leases/", name),
                                query={"requestId": _rid(request_id)})


class Credentials(_Api):
    """A user's secrets for their workloads (``/v1/users/{u}/credentials``): stored sealed, never
    returned."""

    def list(self, *, user: Optional[str] = None) -> List[Credential]:
        return _items(self._transport.request("GET", f"/v1/{self._user(user)}/credentials"),
                      "credentials", Credential)

    def create(self, credential_id: str, secret: Union[bytes, str], *, type: str = "generic",
               description: Optional[str] = None, user: Optional[str] = None,
               request_id: Optional[str] = None) -> Credential:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        credential: Dict[str, Any] = {"type": type}
        if description is not None:
            credential["description"] = description
        return Credential.from_json(self._transport.request(
            "POST", f"/v1/{self._user(user)}/credentials",
            body={"credentialId": credential_id, "credential": credential,
                  "secret": base64.b64encode(raw).decode("ascii"),
                  "requestId": _rid(request_id)}))

    def delete(self, name: str, *, user: Optional[str] = None,
               request_id: Optional[str] = None) -> None:
        full = name if "/credentials/" in name else f"{self._user(user)}/credentials/{name}"
        self._transport.request("DELETE", "/v1/" + full, query={"requestId": _rid(request_id)})


class Audit(_Api):
    """The audit log (admins): every mutation, newest first."""

    def list(self, *, principal: Optional[str] = None, resource: Optional[str] = None,
             start_time: Optional[str] = None, end_time: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[AuditEvent]:
        """Times are RFC 3339 strings; ``principal`` e.g. ``"users/alice"``."""
        return _pages(self._transport, "/v1/auditEvents", "events", AuditEvent,
                      {"principal": principal, "resource": resource, "startTime": start_time,
                       "endTime": end_time, "pageSize": page_size})
