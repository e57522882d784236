"""The system tags MLflow puts on a run started through the module-level API.

User, source name and type, and the git commit, branch and remote of the program's main file,
then the JSON of ``MLFLOW_RUN_CONTEXT``, then the caller's own tags (which win). Git is read from
the repository's files, not through GitPython or a ``git`` subprocess: every run of every
spawned worker pays for this, and it is read once per process.
"""

from __future__ import annotations

import configparser
import functools
import getpass
import json
import os
import re
import sys
from typing import Any

MLFLOW_USER = "mlflow.user"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_BRANCH = "mlflow.source.git.branch"
MLFLOW_GIT_REPO_URL = "mlflow.source.git.repoURL"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NOTE = "mlflow.note.content"


def _user() -> str:
    """MLflow's order: MLFLOW_TRACKING_USERNAME, ~/.mlflow/credentials, the login name."""
    name = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if name:
        return name
    path = os.path.join(os.path.expanduser("~"), ".mlflow", "credentials")
    if os.path.exists(path):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
            name = parser.get("mlflow", "mlflow_tracking_username", fallback=None)
        except configparser.Error:
            name = None
        if name:
            return name
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): MLflow's fallback
        return "unknown"


def _main_file() -> str | None:
    return sys.argv[0] if sys.argv and sys.argv[0] else None


def _git_dir(start: str) -> str | None:
    """The .git directory of the repository holding ``start`` (a worktree's gitdir followed)."""
    path = os.path.abspath(start)
    if os.path.isfile(path):
        path = os.path.dirname(path)
    while True:
        candidate = os.path.join(path, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):  # a worktree or submodule: "gitdir: <path>"
            with open(candidate, encoding="utf-8") as f:
                text = f.read().strip()
            if text.startswith("gitdir:"):
                return os.path.normpath(os.path.join(path, text[len("gitdir:") :].strip()))
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _common_dir(git_dir: str) -> str:
    common = os.path.join(git_dir, "commondir")
    if os.path.isfile(common):
        with open(common, encoding="utf-8") as f:
            return os.path.normpath(os.path.join(git_dir, f.read().strip()))
    return git_dir


def _resolve_ref(git_dir: str, ref: str) -> str | None:
    for base in (git_dir, _common_dir(git_dir)):
        loose = os.path.join(base, ref)
        if os.path.isfile(loose):
            with open(loose, encoding="utf-8") as f:
                return f.read().strip() or None
    packed = os.path.join(_common_dir(git_dir), "packed-refs")
    if os.path.isfile(packed):
        with open(packed, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    return None


def _strip_credentials(url: str) -> str:
    return re.sub(r"^(\w+://)[^/@]*@", r"\1", url)


def git_info(path: str) -> dict[str, str]:
    """Commit, branch and first remote's URL of the repository holding ``path`` (what is known)."""
    try:
        git_dir = _git_dir(path)
        if git_dir is None:
            return {}
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        info: dict[str, str] = {}
        if head.startswith("ref:"):
            ref = head[4:].strip()
            commit = _resolve_ref(git_dir, ref)
            if ref.startswith("refs/heads/"):
                info[MLFLOW_GIT_BRANCH] = ref[len("refs/heads/") :]
        else:
            commit = head  # detached HEAD
        if not commit:
            return {}  # no commit yet: MLflow sets no git tags
        info[MLFLOW_GIT_COMMIT] = commit
        config = configparser.ConfigParser(strict=False)
        config.read(os.path.join(_common_dir(git_dir), "config"))
        for section in config.sections():
            if section.startswith('remote "') and config.has_option(section, "url"):
                info[MLFLOW_GIT_REPO_URL] = _strip_credentials(config.get(section, "url"))
                break
        return info
    except (OSError, UnicodeDecodeError, configparser.Error):
        return {}


@functools.lru_cache(maxsize=1)
def _process_tags() -> tuple[tuple[str, str], ...]:
    """The tags that do not change within a process, computed once."""
    main = _main_file()
    tags = {
        MLFLOW_USER: _user(),
        MLFLOW_SOURCE_NAME: main if main is not None else "<console>",
        MLFLOW_SOURCE_TYPE: "LOCAL",
    }
    if main is not None:
        tags.update(git_info(main))
    return tuple(tags.items())


def resolve_tags(user_tags: dict[str, Any] | None) -> dict[str, Any]:
    """System tags, then MLFLOW_RUN_CONTEXT's, then the caller's: later ones win."""
    tags: dict[str, Any] = dict(_process_tags())
    run_context = os.environ.get("MLFLOW_RUN_CONTEXT")
    if run_context is not None:
        tags.update(json.loads(run_context))
    tags.update(user_tags or {})
    return tags
