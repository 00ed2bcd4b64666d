"""Users, teams, projects, role bindings, grants, API tokens, quotas, credentials and the audit
log: the permission service's REST API (``/v1/users``, ``/v1/teams``, ``/v1/projects``, ...).

Obtain these as attributes of :class:`submarine.Client` (``client.users``, ``client.teams``, ...).
Names may be given as ids (``"alice"``) or full resource names (``"users/alice"``). Resources are
returned as the gateway's JSON (dicts with lowerCamel keys). Roles are ``"viewer"``, ``"editor"``
and ``"admin"``; permissions ``"read"``, ``"write"`` and ``"admin"``; team roles ``"member"``,
``"maintainer"`` and ``"owner"`` (the proto enum names are accepted too).
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

from submarine._http import Transport

Resource = Dict[str, Any]

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


def _pages(transport: Transport, path: str, key: str,
           query: Optional[Dict[str, Any]] = None) -> Iterator[Resource]:
    token: Optional[str] = None
    while True:
        page = transport.request("GET", path, query={**(query or {}), "pageToken": token})
        yield from page.get(key, [])
        token = page.get("nextPageToken") or None
        if not token:
            return


class _Api:
    def __init__(self, transport: Transport, whoami: Callable[[], str]) -> None:
        self._transport = transport
        self._whoami = whoami

    def _user(self, user: Optional[str]) -> str:
        return _full("users/", user) if user else "users/" + self._whoami()


class Users(_Api):
    """``/v1/users``. Creating, deleting and making admins needs a platform admin."""

    def me(self) -> Resource:
        """The caller."""
        return self._transport.request("GET", "/v1/users:me")

    def get(self, name: str) -> Resource:
        return self._transport.request("GET", "/v1/" + _full("users/", name))

    def list(self, *, filter: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[Resource]:
        """Every user matching ``filter`` (e.g. ``'admin = "true"'``)."""
        return _pages(self._transport, "/v1/users", "users",
                      {"filter": filter, "pageSize": page_size})

    def create(self, user_id: str, *, password: str, display_name: Optional[str] = None,
               email: Optional[str] = None, admin: Optional[bool] = None) -> Resource:
        """Creates ``users/{user_id}`` with an initial password (12 to 1024 bytes)."""
        user: Dict[str, Any] = {}
        if display_name is not None:
            user["displayName"] = display_name
        if email is not None:
            user["email"] = email
        if admin is not None:
            user["admin"] = admin
        return self._transport.request(
            "POST", "/v1/users", body={"userId": user_id, "user": user, "password": password})

    def update(self, name: str, *, display_name: Optional[str] = None,
               email: Optional[str] = None, disabled: Optional[bool] = None,
               admin: Optional[bool] = None) -> Resource:
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
        return self._transport.request("PATCH", "/v1/" + full, query={"updateMask": mask},
                                       body=body)

    def delete(self, name: str) -> None:
        """Deletes the user and revokes every token of theirs."""
        self._transport.request("DELETE", "/v1/" + _full("users/", name))

    def set_password(self, name: str, password: str,
                     current_password: Optional[str] = None) -> None:
        """Changes a password; one's own needs ``current_password`` (admins reset anyone's)."""
        body: Dict[str, Any] = {"password": password}
        if current_password is not None:
            body["currentPassword"] = current_password
        self._transport.request("POST", f"/v1/{_full('users/', name)}:setPassword", body=body)


class Teams(_Api):
    """``/v1/teams``: teams and their members."""

    def list(self, *, page_size: Optional[int] = None) -> Iterator[Resource]:
        return _pages(self._transport, "/v1/teams", "teams", {"pageSize": page_size})

    def get(self, name: str) -> Resource:
        return self._transport.request("GET", "/v1/" + _full("teams/", name))

    def create(self, team_id: str, *, display_name: Optional[str] = None,
               description: Optional[str] = None) -> Resource:
        """Creates ``teams/{team_id}``; the caller becomes its owner."""
        team = {k: v for k, v in (("displayName", display_name), ("description", description))
                if v is not None}
        return self._transport.request("POST", "/v1/teams",
                                       body={"teamId": team_id, "team": team})

    def delete(self, name: str) -> None:
        self._transport.request("DELETE", "/v1/" + _full("teams/", name))

    def add_member(self, team: str, user: str, role: str = "member") -> Resource:
        """Adds a member, or changes a member's role."""
        return self._transport.request(
            "POST", f"/v1/{_full('teams/', team)}/members",
            body={"user": _full("users/", user), "role": _enum(_TEAM_ROLES, role, "team role")})

    def remove_member(self, team: str, user: str) -> None:
        self._transport.request(
            "DELETE", f"/v1/{_full('teams/', team)}/members/{_full('users/', user)}")

    def members(self, team: str) -> List[Resource]:
        """Every member ({user, role}), ordered by username."""
        return self._transport.request(
            "GET", f"/v1/{_full('teams/', team)}/members").get("members", [])


class Projects(_Api):
    """``/v1/projects`` and their role bindings."""

    def list(self, *, page_size: Optional[int] = None) -> Iterator[Resource]:
        """The projects the caller can read."""
        return _pages(self._transport, "/v1/projects", "projects", {"pageSize": page_size})

    def get(self, name: str) -> Resource:
        return self._transport.request("GET", "/v1/" + _full("projects/", name))

    def create(self, project_id: str, *, display_name: Optional[str] = None,
               description: Optional[str] = None, owner: Optional[str] = None) -> Resource:
        """Creates ``projects/{project_id}`` owned by ``owner`` (``users/x`` or ``teams/x``;
        default the caller)."""
        project = {k: v for k, v in (("displayName", display_name),
                                     ("description", description), ("owner", owner))
                   if v is not None}
        return self._transport.request("POST", "/v1/projects",
                                       body={"projectId": project_id, "project": project})

    def delete(self, name: str) -> None:
        self._transport.request("DELETE", "/v1/" + _full("projects/", name))

    def bind(self, project: str, subject: str, role: str) -> Resource:
        """Gives ``subject`` (``users/x``, ``teams/x`` or ``allUsers``) a role on the project
        (replacing the subject's previous binding)."""
        return self._transport.request(
            "POST", f"/v1/{_full('projects/', project)}/roleBindings",
            body={"subject": subject, "role": _enum(_ROLES, role, "role")})

    def bindings(self, project: str) -> List[Resource]:
        return self._transport.request(
            "GET", f"/v1/{_full('projects/', project)}/roleBindings").get("roleBindings", [])

    def unbind(self, project: str, binding_or_subject: str) -> None:
        """Removes a role binding, given by name, id or subject."""
        name = binding_or_subject
        if "/roleBindings/" not in name:
            if name == "allUsers" or name.startswith(("users/", "teams/")):
                matches = [b["name"] for b in self.bindings(project)
                           if b.get("subject") == binding_or_subject]
                if not matches:
                    raise ValueError(f"{binding_or_subject} has no role binding on {project}")
                name = matches[0]
            else:
                name = f"{_full('projects/', project)}/roleBindings/{name}"
        self._transport.request("DELETE", "/v1/" + name)


class Grants(_Api):
    """``/v1/grants``: sharing one resource (an environment, a notebook...) with a subject."""

    def list(self, resource: str) -> List[Resource]:
        return self._transport.request("GET", "/v1/grants",
                                       query={"resource": resource}).get("grants", [])

    def create(self, resource: str, subject: str, permission: str) -> Resource:
        """Grants ``permission`` (read, write, admin) on ``resource`` to ``subject``."""
        return self._transport.request(
            "POST", "/v1/grants",
            body={"resource": resource, "subject": subject,
                  "permission": _enum(_PERMISSIONS, permission, "permission")})

    def delete(self, name: str) -> None:
        self._transport.request("DELETE", "/v1/" + _full("grants/", name))


class Tokens(_Api):
    """Long-lived API tokens (``/v1/users/{u}/tokens``); ``user`` defaults to the caller."""

    def list(self, *, user: Optional[str] = None) -> List[Resource]:
        return self._transport.request("GET", f"/v1/{self._user(user)}/tokens").get("tokens", [])

    def create(self, display_name: str = "", *, ttl_seconds: int = 0,
               user: Optional[str] = None) -> Resource:
        """Returns ``{"token": {...}, "secret": "<the token>"}``; the secret is shown only
        here."""
        return self._transport.request(
            "POST", f"/v1/{self._user(user)}/tokens",
            body={"displayName": display_name, "ttlSeconds": ttl_seconds})

    def revoke(self, name: str, *, user: Optional[str] = None) -> Resource:
        full = name if "/tokens/" in name else f"{self._user(user)}/tokens/{name}"
        return self._transport.request("DELETE", "/v1/" + full)


class Quotas(_Api):
    """Limits, usage and leases (``/v1/{owner}/quota``, ``/v1/{owner}/usage``, ``/v1/leases``).
    Limits are keyword arguments: cpu_millis, memory_mib, gpus, experiments, notebooks,
    serving_replicas."""

    def usage(self, owner: str) -> Resource:
        """``{owner, limits, used, activeLeases}``; int64 values arrive as strings."""
        return self._transport.request("GET", f"/v1/{_owner(owner)}/usage")

    def set(self, owner: str, **limits: int) -> Resource:
        """Sets explicit limits (admins); limits not given keep following the default."""
        unknown = sorted(set(limits) - set(_LIMITS))
        if unknown:
            raise TypeError(f"unknown limits: {', '.join(unknown)}")
        return self._transport.request("PATCH", f"/v1/{_owner(owner)}/quota",
                                       body={_LIMITS[k]: v for k, v in limits.items()})

    def leases(self, owner: Optional[str] = None) -> List[Resource]:
        return self._transport.request(
            "GET", "/v1/leases",
            query={"owner": _owner(owner) if owner else None}).get("leases", [])

    def acquire(self, owner: str, project: str, *, holder: str = "",
                ttl_seconds: Optional[int] = None, **resources: int) -> Resource:
        """Takes the whole request or nothing: ResourceExhausted names what is missing."""
        unknown = sorted(set(resources) - set(_LIMITS))
        if unknown:
            raise TypeError(f"unknown resources: {', '.join(unknown)}")
        body: Dict[str, Any] = {"lease": {
            "owner": _owner(owner), "project": _full("projects/", project), "holder": holder,
            "resources": {_LIMITS[k]: v for k, v in resources.items()}}}
        if ttl_seconds is not None:
            body["ttlSeconds"] = ttl_seconds
        return self._transport.request("POST", "/v1/leases", body=body)

    def heartbeat(self, name: str, ttl_seconds: Optional[int] = None) -> Resource:
        body: Dict[str, Any] = {} if ttl_seconds is None else {"ttlSeconds": ttl_seconds}
        return self._transport.request("POST", f"/v1/{_full('leases/', name)}:heartbeat",
                                       body=body)

    def release(self, name: str) -> None:
        self._transport.request("DELETE", "/v1/" + _full("leases/", name))


class Credentials(_Api):
    """A user's secrets for their workloads (``/v1/users/{u}/credentials``): stored sealed, never
    returned."""

    def list(self, *, user: Optional[str] = None) -> List[Resource]:
        return self._transport.request(
            "GET", f"/v1/{self._user(user)}/credentials").get("credentials", [])

    def create(self, credential_id: str, secret: Union[bytes, str], *, type: str = "generic",
               description: Optional[str] = None, user: Optional[str] = None) -> Resource:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        credential: Dict[str, Any] = {"type": type}
        if description is not None:
            credential["description"] = description
        return self._transport.request(
            "POST", f"/v1/{self._user(user)}/credentials",
            body={"credentialId": credential_id, "credential": credential,
                  "secret": base64.b64encode(raw).decode("ascii")})

    def delete(self, name: str, *, user: Optional[str] = None) -> None:
        full = name if "/credentials/" in name else f"{self._user(user)}/credentials/{name}"
        self._transport.request("DELETE", "/v1/" + full)


class Audit(_Api):
    """The audit log (admins): every mutation, newest first."""

    def list(self, *, principal: Optional[str] = None, resource: Optional[str] = None,
             start_time: Optional[str] = None, end_time: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[Resource]:
        """Times are RFC 3339 strings; ``principal`` e.g. ``"users/alice"``."""
        return _pages(self._transport, "/v1/auditEvents", "events",
                      {"principal": principal, "resource": resource, "startTime": start_time,
                       "endTime": end_time, "pageSize": page_size})
