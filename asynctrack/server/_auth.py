"""Optional HTTP basic auth: ``--basic-auth-file`` (``user:password`` lines) or
``ASYNCTRACK_SERVER_BASIC_AUTH=user:password``. A request without valid credentials gets 401
with MLflow's error JSON (UNAUTHENTICATED), which names no user and echoes no credential."""

from __future__ import annotations

import base64
import binascii
import hmac
import os

from ..exceptions import UNAUTHENTICATED, MlflowException

AUTH_ENV = "ASYNCTRACK_SERVER_BASIC_AUTH"
_EXEMPT = frozenset({"/health"})


def load_credentials(path: str | None) -> dict[str, str]:
    """user -> password from the file (blank lines and ``#`` comments skipped) and the env."""
    users: dict[str, str] = {}
    lines: list[str] = []
    if path:
        with open(path, encoding="utf-8") as f:
            lines.extend(f.read().splitlines())
    if os.environ.get(AUTH_ENV):
        lines.append(os.environ[AUTH_ENV])
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"basic auth entry #{number} is not 'user:password'")
        users[user] = password
    return users


def unauthenticated() -> MlflowException:
    return MlflowException(
        "You are not authenticated. Please provide valid credentials (HTTP basic auth).",
        UNAUTHENTICATED,
    )


def authorized(users: dict[str, str], path: str, header: str | None) -> bool:
    """Whether the request may proceed (always when no users are configured)."""
    if not users or path in _EXEMPT:
        return True
    if not header or not header[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user, _, password = decoded.partition(":")
    expected = users.get(user)
    # compare_digest even for an unknown user, so the timing does not tell users apart
    ok = hmac.compare_digest(password.encode(), (expected or "\0" * len(password)).encode())
    return ok and expected is not None
