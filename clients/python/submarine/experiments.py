"""Experiments: ``/v1/projects/{project}/experiments``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from submarine._http import Transport, new_request_id
from submarine.resources import Experiment


def _spec_of(spec: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """An ExperimentSpec from a dict or YAML/JSON text."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            import yaml  # Debian's python3-yaml; only needed for YAML text
            spec = yaml.safe_load(spec)
    if not isinstance(spec, Mapping):
        raise TypeError("an experiment spec is a mapping (meta, environment, spec, ...)")
    return dict(spec)


@dataclass
class ExperimentPage:
    """One page of a listing."""

    items: List[Experiment] = field(default_factory=list)
    next_page_token: str = ""


@dataclass
class LogChunk:
    """A piece of one task's log."""

    task: str = ""
    data: str = ""
    next_offset: int = 0
    size: int = 0
    complete: bool = False
    tasks: List[str] = field(default_factory=list)


class Experiments:
    """Client of the experiment service. Obtain it as ``Client(...).experiments``.

    Mutations carry a request id (default a fresh UUID per call), so retries never submit twice.
    """

    def __init__(self, transport: Transport, project: str = "default") -> None:
        self._transport = transport
        self._project = project

    @property
    def _collection(self) -> str:
        return f"/v1/projects/{self._project}/experiments"

    def name_of(self, name: str) -> str:
        """Full resource name of ``name`` (an id or already a full name)."""
        if name.startswith("projects/"):
            return name
        return f"projects/{self._project}/experiments/{name}"

    def create(self, spec: Union[str, Mapping[str, Any]], *, experiment_id: Optional[str] = None,
               description: Optional[str] = None, labels: Optional[Mapping[str, str]] = None,
               request_id: Optional[str] = None) -> Experiment:
        """Submits an experiment and returns it (state PENDING).

        ``spec`` is Apache Submarine's ExperimentSpec as a dict or YAML/JSON text, e.g.
        ``{"meta": {"framework": "plain", "cmd": "python3 train.py"},
        "spec": {"Worker": {"replicas": 1, "resources": "cpu=1,memory=1Gi"}}}``.
        Raises SubmarineError ``INVALID_ARGUMENT`` naming the field of a bad spec.
        """
        body: Dict[str, Any] = {"spec": _spec_of(spec)}
        if description is not None:
            body["description"] = description
        if labels is not None:
            body["labels"] = dict(labels)
        return Experiment.from_json(self._transport.request(
            "POST", self._collection,
            query={"experimentId": experiment_id or None,
                   "requestId": request_id or new_request_id()},
            body=body))

    def get(self, name: str) -> Experiment:
        """Returns one experiment; raises SubmarineError ``NOT_FOUND`` if there is none."""
        return Experiment.from_json(self._transport.request("GET", "/v1/" + self.name_of(name)))

    def list_page(self, *, filter: Optional[str] = None, page_size: Optional[int] = None,
                  page_token: Optional[str] = None) -> ExperimentPage:
        """One page, newest first. ``filter`` e.g. ``'state = "RUNNING"'`` or
        ``'state IN ("FAILED", "KILLED") AND create_time >= "2026-01-01T00:00:00Z"'``."""
        response = self._transport.request(
            "GET", self._collection,
            query={"filter": filter, "pageSize": page_size, "pageToken": page_token or None})
        return ExperimentPage(
            items=[Experiment.from_json(e) for e in response.get("experiments", [])],
            next_page_token=response.get("nextPageToken", ""))

    def list(self, *, filter: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[Experiment]:
        """Iterates over every matching experiment, newest first."""
        token: Optional[str] = None
        while True:
            page = self.list_page(filter=filter, page_size=page_size, page_token=token)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    def stop(self, name: str, *, request_id: Optional[str] = None) -> Experiment:
        """Asks it to stop (SIGTERM, then forced); it ends KILLED."""
        return Experiment.from_json(self._transport.request(
            "POST", "/v1/" + self.name_of(name) + ":stop",
            body={"requestId": request_id or new_request_id()}))

    def retry(self, name: str, *, request_id: Optional[str] = None) -> Experiment:
        """Runs a finished experiment again as a new attempt (``attempt`` + 1, from PENDING)."""
        return Experiment.from_json(self._transport.request(
            "POST", "/v1/" + self.name_of(name) + ":retry",
            body={"requestId": request_id or new_request_id()}))

    def clone(self, name: str, *, experiment_id: Optional[str] = None,
              env_vars: Optional[Mapping[str, str]] = None,
              labels: Optional[Mapping[str, str]] = None, description: Optional[str] = None,
              priority: Optional[int] = None, request_id: Optional[str] = None) -> Experiment:
        """Submits a copy of ``name``'s spec; ``env_vars`` are merged over its meta.envVars,
        ``labels``, ``description`` and ``priority`` replace the copied ones when given."""
        body: Dict[str, Any] = {"requestId": request_id or new_request_id()}
        if experiment_id:
            body["experimentId"] = experiment_id
        if env_vars:
            body["envVars"] = dict(env_vars)
        if labels is not None:
            body["labels"] = dict(labels)
        if description is not None:
            body["description"] = description
        if priority is not None:
            body["priority"] = priority
        return Experiment.from_json(self._transport.request(
            "POST", "/v1/" + self.name_of(name) + ":clone", body=body))

    def update(self, name: str, *, description: Optional[str] = None,
               labels: Optional[Mapping[str, str]] = None, etag: Optional[str] = None,
               request_id: Optional[str] = None) -> Experiment:
        """Changes the description and/or labels (the spec is immutable). With ``etag``, fails
        with ``ABORTED`` if the experiment changed since."""
        fields = {"description": description, "labels": None if labels is None else dict(labels)}
        given = {k: v for k, v in fields.items() if v is not None}
        if not given:
            raise TypeError("update() needs description or labels")
        full_name = self.name_of(name)
        body: Dict[str, Any] = {"name": full_name, **given}
        if etag:
            body["etag"] = etag
        return Experiment.from_json(self._transport.request(
            "PATCH", "/v1/" + full_name,
            query={"updateMask": ",".join(given), "requestId": request_id or new_request_id()},
            body=body))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> Experiment:
        """Deletes it with its logs (stopping it first) and returns it as it was."""
        response = self._transport.request(
            "DELETE", "/v1/" + self.name_of(name),
            query={"requestId": request_id or new_request_id()})
        return Experiment.from_json(response.get("experiment", {}))

    def read_log(self, name: str, *, task: Optional[str] = None, offset: int = 0,
                 max_bytes: Optional[int] = None) -> LogChunk:
        """Reads a task's log (``"worker-0"``; default the first task) from byte ``offset``."""
        r = self._transport.request(
            "GET", "/v1/" + self.name_of(name) + "/logs",
            query={"task": task, "offset": offset or None, "maxBytes": max_bytes})
        return LogChunk(task=r.get("task", ""), data=r.get("data", ""),
                        next_offset=int(r.get("nextOffset", 0)), size=int(r.get("size", 0)),
                        complete=bool(r.get("complete", False)), tasks=list(r.get("tasks", [])))

    def logs(self, name: str, *, task: Optional[str] = None,
             follow: bool = False) -> Union[str, Iterator[str]]:
        """The whole log of a task, as far as it goes now.

        With ``follow=True``, a generator instead: it yields the log's text piece by piece as
        the task writes it (one stream, see :meth:`stream_logs`) and ends when the task has
        finished. Closing it early stops following."""
        if follow:
            return (chunk.data for chunk in self.stream_logs(name, task=task, follow=True)
                    if chunk.data)
        text, offset = [], 0
        while True:
            chunk = self.read_log(name, task=task, offset=offset)
            if not chunk.data:
                return "".join(text)
            text.append(chunk.data)
            offset = chunk.next_offset

    def stream_logs(self, name: str, *, task: Optional[str] = None, offset: int = 0,
                    follow: bool = False) -> Iterator[LogChunk]:
        """Streams a task's log from byte ``offset`` (``GET .../logs:stream``, NDJSON): yields
        each piece as a :class:`LogChunk`. Without ``follow`` it ends at the log's current end;
        with it, it goes on as the task writes and ends when the task has finished (the last
        chunk has ``complete`` set)."""
        query = {"task": task, "offset": offset or None, "follow": "true" if follow else None}
        for r in self._transport.stream("GET", "/v1/" + self.name_of(name) + "/logs:stream",
                                        query=query):
            yield LogChunk(task=r.get("task", ""), data=r.get("data", ""),
                           next_offset=int(r.get("nextOffset", 0)), size=int(r.get("size", 0)),
                           complete=bool(r.get("complete", False)),
                           tasks=list(r.get("tasks", [])))

    def download_log(self, name: str, file: Union[str, "os.PathLike[str]", BinaryIO], *,
                     task: Optional[str] = None, offset: int = 0, follow: bool = False) -> int:
        """Writes a task's log as it is (``GET .../logs:download``, raw text) to ``file``, a
        path or a binary file object, piece by piece, so a large log is never held in memory;
        with ``follow`` it keeps writing as the task does until the task has finished. Returns
        the number of bytes written.

        Raises:
            SubmarineError: as :meth:`read_log`; ``UNAVAILABLE`` when the download is cut short
                (what was written so far stays in ``file``).
        """
        query = {"task": task, "offset": offset or None, "follow": "true" if follow else None}
        chunks = self._transport.stream_bytes(
            "GET", "/v1/" + self.name_of(name) + "/logs:download", query=query)
        if isinstance(file, (str, os.PathLike)):
            with open(file, "wb") as out:
                return _copy(chunks, out)
        return _copy(chunks, file)

    def wait(self, name: str, timeout: Optional[float] = None,
             poll_interval: float = 0.5) -> Experiment:
        """Waits until it ends — SUCCEEDED, FAILED or KILLED alike — and returns it.

        Raises TimeoutError after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            experiment = self.get(name)
            if experiment.finished:
                return experiment
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{experiment.name} is still {experiment.state} after "
                                   f"{timeout} s")
            time.sleep(poll_interval)


def _copy(chunks: Iterable[bytes], out: BinaryIO) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    return written
