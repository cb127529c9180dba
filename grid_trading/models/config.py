"""Strategy configurations: named, versioned, immutable parameter sets (gridcore.params.StrategyParams).

A version is written once and never changed: runs, backtests and reports point at (name, version) and can be
reproduced from the stored canonical params. A change is a new version whose `parent` is the version it came from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models
from django.utils import timezone

from gridcore.errors import ConfigError


class ImmutableConfigError(ConfigError):
    """A stored config version was about to be changed or deleted."""


def _hash_params(params: Any) -> str:
    # Same bytes as gridcore.params.canonical_json for a canonical dict.
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class GridStrategyConfigQuerySet(models.QuerySet):
    """Bulk writes would bypass the model's guards, so they are refused too."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableConfigError(f"expected no updates to stored strategy configs, was update({', '.join(kwargs)})")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableConfigError("expected no deletion of stored strategy configs, was a bulk delete")


class GridStrategyConfig(models.Model):
    name = models.CharField(max_length=64, help_text="config name; versions of one name form a lineage")
    version = models.PositiveIntegerField(help_text="1, 2, 3 ... per name")
    params = models.JSONField(help_text="canonical params dict (gridcore.params.params_to_dict)")
    config_hash = models.CharField(max_length=64, db_index=True, help_text="sha256 of the canonical JSON of params")
    code_version = models.CharField(max_length=80, help_text="git commit that created it, +dirty, or unknown")
    created_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True, default="")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               help_text="the version this one was derived from")
    provenance = models.JSONField(default=dict, blank=True,
                                  help_text="how it was made, e.g. by `optimize`: search space, windows, data checksum")

    objects = GridStrategyConfigQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="strategy_config_name_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="strategy_config_version_positive"),
        ]
        ordering = ["name", "version"]
        verbose_name = "strategy config"

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableConfigError(f"expected a new config version, was a save of stored {self.ref}: "
                                       f"versions are immutable, create a new version instead")
        if self.config_hash != _hash_params(self.params):
            raise ConfigError(f"expected config_hash to be the sha256 of the canonical params, was "
                              f"{self.config_hash!r} for {self.ref}")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableConfigError(f"expected stored config versions to be kept, was a delete of {self.ref}")
