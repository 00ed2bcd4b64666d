"""Where the SDK's token comes from, and keeping it fresh.

In order: the ``token=`` argument, the file ``$SUBMARINE_SECRETS_DIR/SUBMARINE_TOKEN`` (a
running task's workload identity, which the platform renews while the task runs: re-read when it
changes, and after a 401 for an expired or revoked token), ``$SUBMARINE_TOKEN``, then the CLI's
credentials file
(``${SUBMARINE_CONFIG_DIR:-~/.config/submarine}/credentials``, written by ``submarine login``)
when it was written for the same gateway. Tokens from the file are refreshed like the CLI does:
before they expire, and once after a 401 with reason ``TOKEN_EXPIRED``. An explicit token or
``$SUBMARINE_TOKEN`` is used as is.

Refresh tokens are single use, and the CLI and any number of SDK processes share the file. So,
like the CLI, the SDK refreshes while holding an exclusive ``flock`` on the sibling file
``credentials.lock`` and re-reads the credentials file under it first: if another process
refreshed meanwhile, its tokens are taken over instead of spending a refresh token that is no
longer valid. The new tokens are written back (0600) while the file still holds the same session
(gateway and user), never over another user's login.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Optional

# Refresh this many seconds before the access token expires (matches the CLI).
_REFRESH_MARGIN = 30


def credentials_path() -> str:
    """The CLI's credentials file."""
    directory = os.environ.get("SUBMARINE_CONFIG_DIR") or os.path.join(
        os.path.expanduser("~"), ".config", "submarine")
    return os.path.join(directory, "credentials")


def workload_token_file() -> Optional[str]:
    """The file holding a running task's current identity token, if there is one."""
    directory = os.environ.get("SUBMARINE_SECRETS_DIR")
    if not directory:
        return None
    path = os.path.join(directory, "SUBMARINE_TOKEN")
    return path if os.path.isfile(path) else None


def read_credentials(path: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The stored credentials, or None if there are none (or the file is not credentials)."""
    try:
        with open(path or credentials_path(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        return None
    return data


def _ensure_directory(directory: str) -> None:
    # Like the CLI: a directory created here is 0700; an existing one keeps its mode.
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)


def write_credentials(credentials: Dict[str, Any], path: Optional[str] = None) -> str:
    """Writes the credentials file like the CLI: directory 0700 (when created here), file 0600,
    atomically (the file is never readable by others, not even for an instant). Returns its
    path."""
    target = path or credentials_path()
    directory = os.path.dirname(target)
    _ensure_directory(directory)
    fd, tmp = tempfile.mkstemp(prefix=".credentials.", dir=directory or ".")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(credentials, f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


class CredentialsLock:
    """An exclusive ``flock`` on ``<credentials file>.lock`` — the lock the CLI takes too — held
    inside a ``with`` block. The lock file is created 0600 and never removed (removing it would
    let two holders in at once). Blocks while another process, or another open of the file in
    this one, holds it."""

    def __init__(self, path: str) -> None:
        self.path = path + ".lock"
        self._fd = -1

    def __enter__(self) -> "CredentialsLock":
        _ensure_directory(os.path.dirname(self.path))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        os.close(self._fd)  # closing the only descriptor of the open file releases the lock


def credentials_from_login(response: Dict[str, Any], gateway: str, username: str,
                           now: float) -> Dict[str, Any]:
    """The credentials file content for a LoginResponse (int64 fields arrive as strings)."""
    expires_in = int(response.get("expiresIn") or 0)
    user_name = (response.get("user") or {}).get("name", "")
    return {
        "gateway": gateway,
        "username": user_name[len("users/"):] if user_name.startswith("users/") else username,
        "access_token": response.get("accessToken", ""),
        "refresh_token": response.get("refreshToken", ""),
        "expires_at": int(now) + expires_in if expires_in > 0 else 0,
    }


def _same_session(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return (str(a.get("gateway", "")).rstrip("/") == str(b.get("gateway", "")).rstrip("/")
            and a.get("username") == b.get("username"))


class TokenAuth:
    """Supplies the Authorization header of every request. Thread-safe.

    Args:
        server: the gateway the client talks to (tokens from the credentials file are used only
            for the gateway that issued them).
        token: an explicit token; takes precedence over everything.
        path: the credentials file (default :func:`credentials_path`).
        clock: seconds since the epoch (tests inject one).
    """

    def __init__(self, server: str, token: Optional[str] = None, path: Optional[str] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.server = server.rstrip("/")
        self.path = path or credentials_path()
        self._clock = clock
        self._lock = threading.Lock()
        self._token_file = None if token else workload_token_file()
        self._file_stamp: Optional[tuple] = None
        self._fixed = token or self._read_token_file() or os.environ.get("SUBMARINE_TOKEN") or None
        self._stored: Optional[Dict[str, Any]] = None
        # Whether the session is the credentials file's (shared with the CLI and other
        # processes): yes for tokens read from it or saved to it.
        self._shared = True
        if not self._fixed:
            stored = read_credentials(self.path)
            if stored and str(stored.get("gateway", "")).rstrip("/") == self.server:
                self._stored = stored

    def _read_token_file(self) -> Optional[str]:
        """The workload token file's token when the file changed since it was last read (or on
        the first read); None when unchanged, absent or empty."""
        if not self._token_file:
            return None
        try:
            st = os.stat(self._token_file)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._file_stamp:
                return None
            with open(self._token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError:
            return None
        self._file_stamp = stamp
        return token or None

    def renewable(self, reason: str) -> bool:
        """Whether a 401 with ``reason`` may pass once the token is renewed: an expired token,
        or a workload token revoked because the platform renewed it meanwhile."""
        return reason == "TOKEN_EXPIRED" or (reason == "TOKEN_REVOKED"
                                              and self._token_file is not None)

    @property
    def source(self) -> str:
        """``"token"`` (argument or $SUBMARINE_TOKEN), ``"credentials"`` or ``""`` (none)."""
        if self._fixed:
            return "token"
        return "credentials" if self._stored else ""

    @property
    def username(self) -> str:
        """The username of the stored credentials ("" otherwise)."""
        return str(self._stored.get("username", "")) if self._stored else ""

    def use(self, credentials: Optional[Dict[str, Any]], save: bool) -> None:
        """Switches to freshly issued credentials (after a login), optionally saving them to the
        credentials file; None makes the client anonymous (after a logout)."""
        with self._lock:
            self._fixed = None
            self._stored = credentials or None
            if save and credentials:
                with CredentialsLock(self.path):
                    write_credentials(credentials, self.path)
            self._shared = save

    @property
    def refresh_token(self) -> str:
        """The refresh token of the current session ("" with a fixed token or none)."""
        return str(self._stored.get("refresh_token", "")) if self._stored else ""

    def header(self, refresh: Callable[[str], Dict[str, Any]]) -> Optional[str]:
        """The Authorization header value, refreshing an access token about to expire first.
        ``refresh(refresh_token)`` performs the refresh call and returns the LoginResponse."""
        with self._lock:
            if self._token_file and self._fixed:
                self._fixed = self._read_token_file() or self._fixed
            if self._fixed:
                return f"Bearer {self._fixed}"
            if not self._stored:
                return None
            if self._expiring():
                self._refresh_locked(refresh, rejected="")
            return f"Bearer {self._stored['access_token']}"

    def refresh_after_expiry(self, refresh: Callable[[str], Dict[str, Any]],
                             rejected: str) -> bool:
        """After a 401 TOKEN_EXPIRED for the access token ``rejected``: refreshes stored
        credentials (or takes over fresher ones another process stored); False if there is
        nothing to refresh (an explicit token, or no refresh token)."""
        with self._lock:
            if self._token_file and self._fixed:
                # A workload token renewed since it was read: retry with the new one.
                fresh = self._read_token_file()
                if fresh and fresh != rejected:
                    self._fixed = fresh
                    return True
                return self._fixed != rejected
            if self._fixed or not self._stored or not self._stored.get("refresh_token"):
                return False
            self._refresh_locked(refresh, rejected)
            return True

    def _expiring(self) -> bool:
        stored = self._stored or {}
        expires_at = int(stored.get("expires_at") or 0)
        return bool(expires_at and stored.get("refresh_token")
                    and self._clock() >= expires_at - _REFRESH_MARGIN)

    def _exchange(self, refresh: Callable[[str], Dict[str, Any]]) -> Dict[str, Any]:
        stored = self._stored or {}
        response = refresh(str(stored.get("refresh_token", "")))
        fresh = credentials_from_login(response, self.server, str(stored.get("username", "")),
                                       self._clock())
        if not fresh["refresh_token"]:
            fresh["refresh_token"] = stored.get("refresh_token", "")
        return fresh

    def _refresh_locked(self, refresh: Callable[[str], Dict[str, Any]], rejected: str) -> None:
        if not self._shared:
            # A session only this client knows (login without save): nobody else refreshes it.
            self._stored = self._exchange(refresh)
            return
        with CredentialsLock(self.path):
            on_disk = read_credentials(self.path)
            held = self._stored or {}
            same = on_disk is not None and _same_session(on_disk, held)
            if on_disk is not None and same and (
                    on_disk.get("refresh_token") != held.get("refresh_token")):
                # Another process refreshed first and spent the refresh token we hold.
                self._stored = on_disk
                if not self._expiring() and on_disk.get("access_token") != rejected:
                    return
            fresh = self._exchange(refresh)
            self._stored = fresh
            if same:
                write_credentials(fresh, self.path)
