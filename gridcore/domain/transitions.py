"""Every status column's transition table, in one place. The Django models' CheckConstraints and the transition
service (grid_trading.services.transitions) are generated from / go through these tables."""

from __future__ import annotations

from enum import StrEnum


class ZoneStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUPERSEDED = "SUPERSEDED"
    EXPIRED = "EXPIRED"
    INVALID = "INVALID"


class ZoneTrigger(StrEnum):
    SUPERSEDE = "SUPERSEDE"  # a newer scan produced a zone for the same symbol/market/config
    EXPIRE = "EXPIRE"  # valid_until passed without a newer scan


# A zone is born ACTIVE (valid box) or INVALID (the box failed its rules; kept for the record and the reasons),
# or SUPERSEDED when it is a scan of a past bar older than the zone already active (`scanner --at` back-fill).
ZONE_INITIAL = frozenset({ZoneStatus.ACTIVE, ZoneStatus.INVALID, ZoneStatus.SUPERSEDED})
ZONE_TRANSITIONS: dict[tuple[str, str], str] = {
    (ZoneStatus.ACTIVE, ZoneTrigger.SUPERSEDE): ZoneStatus.SUPERSEDED,
    (ZoneStatus.ACTIVE, ZoneTrigger.EXPIRE): ZoneStatus.EXPIRED,
}
ZONE_TERMINAL = frozenset({ZoneStatus.SUPERSEDED, ZoneStatus.EXPIRED, ZoneStatus.INVALID})
