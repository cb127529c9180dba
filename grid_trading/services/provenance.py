"""Which code produced a record: the git commit of the working tree, with "+dirty" for uncommitted changes."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from django.conf import settings


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def code_version() -> str:
    """`git rev-parse HEAD` (+ "+dirty" when tracked files changed); "unknown" outside a git checkout.

    Cached per process: a long-running executor reports the code it started with.
    """
    repo = Path(settings.BASE_DIR)
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return "unknown"
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return head + "+dirty" if status else head
