"""The entry point of the SDK."""

from __future__ import annotations

import time
from typing import Mapping, Optional

from submarine._auth import TokenAuth, credentials_from_login, read_credentials
from submarine._http import RetryPolicy, Transport, new_request_id
from submarine._server import resolve_server
from submarine.clusters import Clusters
from submarine.environments import Environments
from submarine.experiments import Experiments
from submarine.errors import SubmarineError
from submarine.permission import (Audit, Credentials, Grants, Projects, Quotas, Teams, Tokens,
                                  Users)
from submarine.resources import User


class Client:
    """A Submarine server, reached through its gateway's REST API.

    Example::

        client = Client("http://127.0.0.1:8080", token=os.environ["MY_TOKEN"])
        client.environments.create("my-env", image="python:3.11")

    Every request carries "Authorization: Bearer <token>", the token being ``token``, else
    ``$SUBMARINE_TOKEN``, else the CLI's credentials file (``submarine login``) if it was written
    for this server; tokens from the file are refreshed when they expire. Without any, call
    :meth:`login`.

    Requests reuse one keep-alive connection per thread. GETs and mutations (which all carry a
    request id) are retried on UNAVAILABLE per ``retry``.

    Args:
        server: gateway URL; default ``$SUBMARINE_SERVER``, else the running local stack, else
            the server the CLI is logged in to.
        token: an access or API token (see ``submarine token create``).
        project: the project every environment call addresses (default ``"default"``).
        timeout: seconds per HTTP request.
        headers: extra headers for every request.
        data_dir: the local stack's data directory to read the gateway URL from.
        credentials_file: the CLI's credentials file (default
            ``${SUBMARINE_CONFIG_DIR:-~/.config/submarine}/credentials``).
        retry: how calls failing with UNAVAILABLE are retried (default :class:`RetryPolicy()`:
            5 attempts within 30 s).
    """

    def __init__(self, server: Optional[str] = None, *, token: Optional[str] = None,
                 project: str = "default", timeout: float = 30.0,
                 headers: Optional[Mapping[str, str]] = None,
                 data_dir: Optional[str] = None,
                 credentials_file: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None) -> None:
        stored = read_credentials(credentials_file)
        self.server = resolve_server(server, data_dir,
                                     stored.get("gateway") if stored else None)
        self.project = project
        self._auth = TokenAuth(self.server, token=token, path=credentials_file)
        self._transport = Transport(self.server, timeout=timeout, headers=headers,
                                    auth=self._auth, retry=retry)
        self.environments = Environments(self._transport, project)
        self.experiments = Experiments(self._transport, project)
        self.clusters = Clusters(self._transport)
        whoami = self._username
        self.users = Users(self._transport, whoami)
        self.teams = Teams(self._transport, whoami)
        self.projects = Projects(self._transport, whoami)
        self.grants = Grants(self._transport, whoami)
        self.tokens = Tokens(self._transport, whoami)
        self.quotas = Quotas(self._transport, whoami)
        self.credentials = Credentials(self._transport, whoami)
        self.audit = Audit(self._transport, whoami)

    def login(self, username: str, password: str, *, save: bool = False) -> User:
        """Logs in with a password and uses the issued tokens from now on (refreshing them).
        With ``save`` they are also written to the CLI's credentials file (0600), like
        ``submarine login``. Returns the user.

        Raises:
            SubmarineError: ``UNAUTHENTICATED`` for a wrong username or password.
        """
        response = self._transport.request(
            "POST", "/v1/auth:login", body={"username": username, "password": password},
            authenticate=False)
        self._auth.use(credentials_from_login(response, self.server, username, time.time()),
                       save=save)
        return User.from_json(response.get("user") or {})

    def logout(self) -> None:
        """Ends the session (revoking its tokens); the client is anonymous afterwards."""
        self._transport.request("POST", "/v1/auth:logout",
                                body={"refreshToken": self._auth.refresh_token,
                                      "requestId": new_request_id()})
        self._auth.use(None, save=False)

    def whoami(self) -> User:
        """The caller (``GET /v1/users:me``)."""
        return self.users.me()

    def close(self) -> None:
        """Closes the calling thread's connection to the server (a later call reopens one)."""
        self._transport.close()

    def _username(self) -> str:
        if self._auth.username:
            return self._auth.username
        name = self.users.me().name
        return name[len("users/"):] if name.startswith("users/") else name

    def ready(self) -> bool:
        """True if the gateway answers ``/readyz`` with 200 (every backend serving)."""
        try:
            self._transport.request("GET", "/readyz", authenticate=False)
        except SubmarineError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Client(server={self.server!r}, project={self.project!r})"
