"""The resources the SDK returns: typed dataclasses built from the gateway's JSON.

Attributes are the snake_case forms of the proto fields (``displayName`` -> ``display_name``).
Values are typed: int64 fields, which proto3 JSON sends as strings, are ``int``; timestamps are
timezone-aware ``datetime`` objects (``None`` when unset); enums are their names as ``str``
(e.g. ``"MAINTAINER"``); nested messages are dataclasses too. A field the server sends that this
SDK does not know (a newer server) is kept, untouched and under its JSON name, in the ``extra``
dict of the object it belongs to, so nothing a server says is lost.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

_R = TypeVar("_R", bound="Resource")

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp (0 to 9 fractional digits; beyond microseconds they are cut) as an
    aware datetime.

    Raises:
        ValueError: if ``text`` is not RFC 3339.
    """
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    day, clock, fraction, zulu, sign, hours, minutes = match.groups()
    tz = timezone.utc
    if not zulu:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        tz = timezone(-offset if sign == "-" else offset)
    base = datetime.strptime(f"{day}T{clock}", "%Y-%m-%dT%H:%M:%S")
    micros = int((fraction or "0").ljust(6, "0")[:6])
    return base.replace(microsecond=micros, tzinfo=tz)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@functools.lru_cache(maxsize=None)
def _schema(cls: type) -> Dict[str, Tuple[str, Any]]:
    """JSON name -> (attribute, annotated type) of a resource class (``extra`` excluded)."""
    hints = typing.get_type_hints(cls)
    return {_camel(f.name): (f.name, hints[f.name])
            for f in dataclasses.fields(cls) if f.name != "extra"}


def _resource_type(tp: Any) -> Optional[type]:
    return tp if isinstance(tp, type) and issubclass(tp, Resource) else None


def _decode(tp: Any, value: Any) -> Any:
    """``value`` (from JSON) as the annotated type ``tp``."""
    if tp is Any:
        return value  # kept as the JSON value (e.g. an experiment's spec)
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return None if value is None else _decode(inner, value)
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        return [_decode(item, v) for v in value or []]
    if origin in (dict, Dict):
        _, item = typing.get_args(tp)
        return {str(k): _decode(item, v) for k, v in (value or {}).items()}
    resource = _resource_type(tp)
    if resource is not None:
        return resource.from_json(value or {})
    if tp is datetime:
        return parse_time(value)
    if tp is int:
        return int(value)
    if tp is bool:
        return bool(value)
    if tp is float:
        return float(value)  # numbers, and "NaN"/"Infinity" as JSON writes them
    return str(value)  # str, and enums (their names)


class Resource:
    """Base of the SDK's resource dataclasses. Every subclass ends with ``extra``."""

    extra: Dict[str, Any]

    @classmethod
    def from_json(cls: Type[_R], data: Dict[str, Any]) -> _R:
        """Builds the resource from the gateway's JSON object (lowerCamel keys); unknown keys go
        to ``extra``.

        Raises:
            ValueError: a known field holds a value of the wrong form (e.g. a bad timestamp).
        """
        schema = _schema(cls)
        known: Dict[str, Any] = {}
        extra: Dict[str, Any] = {}
        for key, value in data.items():
            if key not in schema:
                extra[key] = value
            elif value is not None:
                attribute, tp = schema[key]
                known[attribute] = _decode(tp, value)
        return cls(**known, extra=extra)  # type: ignore[call-arg]


@dataclass
class KernelSpec(Resource):
    """How a notebook kernel or an experiment's software is prepared in the image."""

    name: str = ""
    channels: List[str] = field(default_factory=list)
    conda_dependencies: List[str] = field(default_factory=list)
    pip_dependencies: List[str] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Environment(Resource):
    """An environment profile: the image and libraries notebooks and experiments run with."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    image: str = ""
    kernel_spec: KernelSpec = field(default_factory=KernelSpec)
    labels: Dict[str, str] = field(default_factory=dict)
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    etag: str = ""
    uid: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ComputeCluster(Resource):
    """A compute cluster, ``computeClusters/{id}``: where experiments run. ``kind`` is
    ``"local"``, ``"kubernetes"`` or ``"yarn"``; the connection of that kind is in ``local``,
    ``kubernetes`` or ``yarn`` (JSON objects with lowerCamel keys)."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    kind: str = ""
    local: Optional[Dict[str, Any]] = None
    kubernetes: Optional[Dict[str, Any]] = None
    yarn: Optional[Dict[str, Any]] = None
    capacity: str = ""
    allowed_projects: List[str] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    etag: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class User(Resource):
    """A user, ``users/{username}``."""

    name: str = ""
    display_name: str = ""
    email: str = ""
    disabled: bool = False
    admin: bool = False
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    teams: List[str] = field(default_factory=list)
    etag: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Team(Resource):
    """A team, ``teams/{team}``."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    create_time: Optional[datetime] = None
    member_count: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TeamMember(Resource):
    """One membership: ``user`` (``users/{u}``) and ``role`` (MEMBER, MAINTAINER or OWNER)."""

    user: str = ""
    role: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Project(Resource):
    """A project, ``projects/{project}``, owned by ``users/{u}`` or ``teams/{t}``."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    owner: str = ""
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    etag: str = ""
    # Where its experiments run when their spec names no cluster ("" = local).
    default_compute_cluster: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RoleBinding(Resource):
    """A project role (VIEWER, EDITOR or PROJECT_ADMIN) given to a subject."""

    name: str = ""
    subject: str = ""
    role: str = ""
    create_time: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Grant(Resource):
    """A permission (READ, WRITE or ADMIN) on one resource given to a subject."""

    name: str = ""
    resource: str = ""
    subject: str = ""
    permission: str = ""
    create_time: Optional[datetime] = None
    creator: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ApiToken(Resource):
    """An API token's metadata (the secret is shown only by :class:`CreatedApiToken`)."""

    name: str = ""
    display_name: str = ""
    create_time: Optional[datetime] = None
    expire_time: Optional[datetime] = None
    revoke_time: Optional[datetime] = None
    scope: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CreatedApiToken(Resource):
    """A new API token and its secret, which cannot be read again."""

    token: ApiToken = field(default_factory=ApiToken)
    secret: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Resources(Resource):
    """Amounts of schedulable resources; ``None`` means not given (in limits: the default)."""

    cpu_millis: Optional[int] = None
    memory_mib: Optional[int] = None
    gpus: Optional[int] = None
    experiments: Optional[int] = None
    notebooks: Optional[int] = None
    serving_replicas: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage(Resource):
    """Limits and use of one owner (``users/{u}`` or ``teams/{t}``)."""

    owner: str = ""
    limits: Resources = field(default_factory=Resources)
    used: Resources = field(default_factory=Resources)
    active_leases: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Lease(Resource):
    """Resources held by a running workload, ``leases/{id}``."""

    name: str = ""
    owner: str = ""
    project: str = ""
    resources: Resources = field(default_factory=Resources)
    holder: str = ""
    create_time: Optional[datetime] = None
    expire_time: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Credential(Resource):
    """A credential's metadata; its secret is never returned."""

    name: str = ""
    type: str = ""
    description: str = ""
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditEvent(Resource):
    """One recorded mutation."""

    event_id: str = ""
    publisher: str = ""
    seq: int = 0
    type: str = ""
    resource: str = ""
    principal: str = ""
    request_id: str = ""
    occur_time: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class StateTransition(Resource):
    """One state an experiment entered."""

    state: str = ""
    time: Optional[datetime] = None
    reason: str = ""
    attempt: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Task(Resource):
    """One replica of one role of an experiment."""

    role: str = ""
    index: int = 0
    attempt: int = 0
    state: str = ""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    host: str = ""
    start_time: Optional[datetime] = None
    finish_time: Optional[datetime] = None
    message: str = ""
    # System metrics of its processes, where the cluster can tell: CPU seconds (user + system),
    # resident bytes now (0 once it ended) and the largest seen.
    cpu_seconds: float = 0.0
    memory_bytes: int = 0
    max_memory_bytes: int = 0
    # GPUs, for a task given some where the cluster can tell (nvidia-smi): memory its processes
    # hold now (None when unknown), the most seen, and its GPUs' utilization in percent.
    gpu_memory_bytes: Optional[int] = None
    max_gpu_memory_bytes: int = 0
    gpu_utilization: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Experiment(Resource):
    """An experiment, ``projects/{project}/experiments/{experiment}``. ``spec`` and
    ``reproducibility`` are kept as the server's JSON (Apache Submarine's ExperimentSpec
    vocabulary: ``meta``, ``environment``, ``spec``, ...)."""

    name: str = ""
    uid: str = ""
    description: str = ""
    labels: Dict[str, str] = field(default_factory=dict)
    spec: Dict[str, Any] = field(default_factory=dict)
    state: str = ""
    state_reason: str = ""
    history: List[StateTransition] = field(default_factory=list)
    tasks: List[Task] = field(default_factory=list)
    owner: str = ""
    attempt: int = 0
    create_time: Optional[datetime] = None
    update_time: Optional[datetime] = None
    start_time: Optional[datetime] = None
    end_time: Optional[datetime] = None
    etag: str = ""
    reproducibility: Dict[str, Any] = field(default_factory=dict)
    # The current attempt's identity token (its name, never the secret).
    workload_token: str = ""
    # What the platform could not honour but ran anyway (an image on the local cluster, ...).
    warnings: List[str] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether it reached a final state (SUCCEEDED, FAILED or KILLED)."""
        return self.state in ("SUCCEEDED", "FAILED", "KILLED")
