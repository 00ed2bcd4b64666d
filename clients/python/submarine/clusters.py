"""Compute clusters: ``/v1/computeClusters``. Every user lists them; administrators manage them."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

from submarine._http import Transport, new_request_id, update_body
from submarine.resources import ComputeCluster

# Updatable fields: snake_case argument name -> JSON field name.
_FIELDS = {
    "display_name": "displayName",
    "description": "description",
    "capacity": "capacity",
    "allowed_projects": "allowedProjects",
    "labels": "labels",
    "kubernetes": "kubernetes",
    "yarn": "yarn",
}


def _camel_keys(connection: Mapping[str, Any]) -> Dict[str, Any]:
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): v
            for k, v in connection.items()}


def _projects(projects: Sequence[str]) -> list:
    return [p if p.startswith("projects/") else f"projects/{p}" for p in projects]


def _field_json(name: str, value: Any) -> Any:
    if name in ("kubernetes", "yarn"):
        return _camel_keys(value)
    if name == "allowed_projects":
        return _projects(value)
    if name == "labels":
        return dict(value)
    return value


class Clusters:
    """Client of the compute clusters. Obtain it as ``Client(...).clusters``.

    ``client.clusters.create("gpu-a", kubernetes={"kubeconfig_credential":
    "platform/credentials/gpu-a-kubeconfig", "namespace": "ml-jobs"}, capacity="nvidia.com/gpu=8",
    allowed_projects=["vision"])``; an experiment then names it with ``computeCluster: gpu-a``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @staticmethod
    def name_of(name: str) -> str:
        """``"gpu-a"`` -> ``"computeClusters/gpu-a"``; a full name is returned unchanged."""
        return name if name.startswith("computeClusters/") else f"computeClusters/{name}"

    def get(self, name: str) -> ComputeCluster:
        """One cluster; SubmarineError ``NOT_FOUND`` if there is none."""
        return ComputeCluster.from_json(self._transport.request("GET", "/v1/" + self.name_of(name)))

    def list(self, *, filter: Optional[str] = None) -> Iterator[ComputeCluster]:
        """Every cluster matching ``filter`` (e.g. ``'kind = "kubernetes"'``), oldest first."""
        token: Optional[str] = None
        while True:
            page = self._transport.request(
                "GET", "/v1/computeClusters",
                query={"filter": filter, "pageSize": 1000, "pageToken": token})
            yield from (ComputeCluster.from_json(c) for c in page.get("computeClusters", []))
            token = page.get("nextPageToken") or None
            if token is None:
                return

    def create(self, cluster_id: str, *, kubernetes: Optional[Mapping[str, Any]] = None,
               yarn: Optional[Mapping[str, Any]] = None, capacity: Optional[str] = None,
               allowed_projects: Optional[Sequence[str]] = None,
               display_name: Optional[str] = None, description: Optional[str] = None,
               labels: Optional[Mapping[str, str]] = None,
               request_id: Optional[str] = None) -> ComputeCluster:
        """Creates ``computeClusters/{cluster_id}`` (administrators) with exactly one of
        ``kubernetes`` (``kubeconfig_credential``, ``namespace``, ``context``, ``default_image``,
        ``kueue_queue``, ``indexed_jobs_only``) or ``yarn`` (``rm_url``, ``user``, ``queue``, ...).
        Raises SubmarineError (``INVALID_ARGUMENT`` naming the field, ``PERMISSION_DENIED``,
        ``ALREADY_EXISTS``)."""
        body: Dict[str, Any] = {}
        for arg, value in (("kubernetes", kubernetes), ("yarn", yarn), ("capacity", capacity),
                           ("allowed_projects", allowed_projects),
                           ("display_name", display_name), ("description", description),
                           ("labels", labels)):
            if value is not None:
                body[_FIELDS[arg]] = _field_json(arg, value)
        return ComputeCluster.from_json(self._transport.request(
            "POST", "/v1/computeClusters",
            query={"computeClusterId": cluster_id, "requestId": request_id or new_request_id()},
            body=body))

    def update(self, name: str, *, etag: Optional[str] = None,
               request_id: Optional[str] = None, **fields: Any) -> ComputeCluster:
        """Updates the named fields (``capacity``, ``allowed_projects``, ``display_name``,
        ``description``, ``labels``, or the connection of the cluster's own kind)."""
        full_name = self.name_of(name)
        body, mask = update_body(full_name, fields, _FIELDS, _field_json, etag)
        return ComputeCluster.from_json(self._transport.request(
            "PATCH", "/v1/" + full_name,
            query={"updateMask": mask, "requestId": request_id or new_request_id()}, body=body))

    def delete(self, name: str, *, request_id: Optional[str] = None) -> ComputeCluster:
        """Deletes a cluster (administrators) and returns it as it was; experiments running on
        it finish, new ones are refused."""
        response = self._transport.request(
            "DELETE", "/v1/" + self.name_of(name),
            query={"requestId": request_id or new_request_id()})
        return ComputeCluster.from_json(response.get("computeCluster", {}))
