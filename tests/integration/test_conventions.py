"""House rules that a grep can check: status columns are written only by the transition service."""

import re
from pathlib import Path

from django.conf import settings


def test_status_columns_change_only_through_the_transition_service():
    offenders = []
    pattern = re.compile(r"\.status\s*=(?!=)|\)\.update\([^)]*\bstatus\s*=")
    for path in (Path(settings.BASE_DIR) / "grid_trading").rglob("*.py"):
        if path.name in ("transitions.py", "db_transitions.py") or "migrations" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(settings.BASE_DIR)}:{n}: {line.strip()}")
    assert offenders == []
