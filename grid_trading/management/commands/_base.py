"""What every autogrid command shares: --json output and turning our errors into CommandError."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gridcore.errors import GridError


class GridCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except GridError as e:
            raise CommandError(str(e)) from e

    def emit(self, options: dict, payload: Any, text: str | None = None) -> None:
        """JSON when --json was given, else the human text (or an indented JSON fallback)."""
        if options.get("json"):
            self.stdout.write(json.dumps(payload, default=str))
        else:
            self.stdout.write(text if text is not None else json.dumps(payload, indent=2, default=str))

    def progress(self, message: str) -> None:
        """Progress goes to stderr so --json output on stdout stays parseable."""
        self.stderr.write(message)
