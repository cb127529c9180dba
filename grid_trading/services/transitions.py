"""The one writer of every status column: table lookup, then a compare-and-swap UPDATE.

An illegal transition raises InvalidTransition and changes nothing; a row whose status changed under us (another
process won the race) raises ConcurrentModification. The database triggers (grid_trading.db_transitions) refuse
whatever bypasses this function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import models

from gridcore.domain.fsm import next_state
from gridcore.domain.transitions import ZONE_TRANSITIONS, ZoneTrigger
from gridcore.errors import GridError


class ConcurrentModification(GridError):
    pass


def transition(obj: models.Model, *, table: Mapping[tuple[str, str], str], trigger: str, **fields: Any) -> str:
    """Move obj.status along `trigger`; `fields` are written in the same UPDATE. Returns the new status."""
    entity = f"{type(obj).__name__} {obj.pk}"
    old = obj.status
    new = next_state(table, entity, old, str(trigger))
    n = type(obj).objects.filter(pk=obj.pk, status=old).update(status=new, **fields)
    if n != 1:
        raise ConcurrentModification(f"{entity}: expected status {old}, but it changed under this process")
    obj.status = new
    for k, v in fields.items():
        setattr(obj, k, v)
    return new


def zone_transition(zone, *, trigger: ZoneTrigger) -> str:
    return transition(zone, table=ZONE_TRANSITIONS, trigger=trigger)
