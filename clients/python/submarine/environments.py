"""Environment profiles: ``/v1/projects/{project}/environments``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional

from submarine._http import Transport, new_request_id, update_body
from submarine.resources import Environment

# Updatable fields: snake_case argument name -> JSON field name.
_FIELDS = {
    "display_name": "displayName",
    "description": "description",
    "image": "image",
    "kernel_spec": "kernelSpec",
    "labels": "labels",
}


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def _kernel_spec_json(spec: Mapping[str, Any]) -> Dict[str, Any]:
    return {_camel(k): (list(v) if isinstance(v, (list, tuple)) else v) for k, v in spec.items()}


def _field_json(name: str, value: Any) -> Any:
    if name == "kernel_spec" and value is not None:
        return _kernel_spec_json(value)
    if name == "labels" and value is not None:
        return dict(value)
    return value


@dataclass
class EnvironmentPage:
    """One page of a listing."""

    items: List[Environment] = field(default_factory=list)
    next_page_token: str = ""


class Environments:
    """Client of the environment service. Obtain it as ``Client(...).environments``.

    Every mutation carries a request id (``request_id``, default a fresh UUID per call) that the
    server uses to answer a repeat with its first answer, so retries — the SDK's own after a
    connection failure or a 503, or yours with the same id — never apply a change twice.
    """

    def __init__(self, transport: Transport, project: str = "default") -> None:
        self._transport = transport
        self._project = project

    @property
    def _collection(self) -> str:
        return f"/v1/projects/{self._project}/environments"

    def name_of(self, name: str) -> str:
        """Full resource name of ``name`` (an id such as ``"my-env"`` or already a full name)."""
        if name.startswith("projects/"):
            return name
        return f"projects/{self._project}/environments/{name}"

    def create(self, environment_id: str, *, image: str, display_name: Optional[str] = None,
               description: Optional[str] = None,
               kernel_spec: Optional[Mapping[str, Any]] = None,
               labels: Optional[Mapping[str, str]] = None,
               request_id: Optional[str] = None) -> Environment:
        """Creates ``projects/{project}/environments/{environment_id}`` and returns it.

        ``kernel_spec`` takes ``name``, ``channels``, ``conda_dependencies`` and
        ``pip_dependencies`` (snake_case or lowerCamel). Raises SubmarineError (e.g.
        ``ALREADY_EXISTS``, ``INVALID_ARGUMENT``; ``REQUEST_ID_REUSED`` for a ``request_id``
        already used for another request).
        """
        body: Dict[str, Any] = {"image": image}
        for arg, value in (("display_name", display_name), ("description", description),
                           ("kernel_spec", kernel_spec), ("labels", labels)):
            if value is not None:
                body[_FIELDS[arg]] = _field_json(arg, value)
        return Environment.from_json(self._transport.request(
            "POST", self._collection,
            query={"environmentId": environment_id,
                   "requestId": request_id or new_request_id()},
            body=body))

    def get(self, name: str) -> Environment:
        """Returns one environment; raises SubmarineError ``NOT_FOUND`` if there is none."""
        return Environment.from_json(self._transport.request("GET", "/v1/" + self.name_of(name)))

    def list_page(self, *, filter: Optional[str] = None, order_by: Optional[str] = None,
                  page_size: Optional[int] = None,
                  page_token: Optional[str] = None) -> EnvironmentPage:
        """Returns one page. ``filter`` e.g. ``'labels.team = "ml" AND image != "x"'``,
        ``'name = "py*"'`` or ``'(labels.team = "ml" OR labels.team = "cv") AND NOT labels.old:*'``;
        ``order_by`` is ``"create_time"`` (default) or ``"create_time desc"``; pass the previous
        page's ``next_page_token`` to continue."""
        response = self._transport.request(
            "GET", self._collection,
            query={"filter": filter, "orderBy": order_by, "pageSize": page_size,
                   "pageToken": page_token or None})
        return EnvironmentPage(
            items=[Environment.from_json(e) for e in response.get("environments", [])],
            next_page_token=response.get("nextPageToken", ""))

    def list(self, *, filter: Optional[str] = None, order_by: Optional[str] = None,
             page_size: Optional[int] = None) -> Iterator[Environment]:
        """Iterates over every matching environment, fetching pages of ``page_size`` lazily."""
        token: Optional[str] = None
        while True:
            page = self.list_page(filter=filter, order_by=order_by, page_size=page_size,
                                  page_token=token)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    def update(self, name: str, *, etag: Optional[str] = None,
               request_id: Optional[str] = None, **fields: Any) -> Environment:
        """Updates the given fields (``display_name``, ``description``, ``image``,
        ``kernel_spec``, ``labels``; a field set to None is cleared) and returns the result.

        Only the named fields change (the update mask lists them). With ``etag``, the update
        fails with SubmarineError ``ABORTED`` (HTTP 409) if the environment changed since.
        """
        full_name = self.name_of(name)
        body, mask = update_body(full_name, fields, _FIELDS, _field_json, etag)
        return Environment.from_json(self._transport.request(
            "PATCH", "/v1/" + full_name,
            query={"updateMask": mask, "requestId": request_id or new_request_id()}, body=body))

    def delete(self, name: str, *, etag: Optional[str] = None,
               request_id: Optional[str] = None) -> Environment:
        """Deletes an environment and returns it as it was. With ``etag``, fails with
        ``ABORTED`` if it changed since; ``NOT_FOUND`` if there is none."""
        response = self._transport.request(
            "DELETE", "/v1/" + self.name_of(name),
            query={"etag": etag or None, "requestId": request_id or new_request_id()})
        return Environment.from_json(response.get("environment", {}))
