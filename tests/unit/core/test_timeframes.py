"""ms_to_iso's arithmetic formatting against datetime's, over the whole range it serves by arithmetic and beyond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gridcore.timeframes import ms_to_iso, parse_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def by_datetime(ms: int) -> str:
    dt = EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S" if dt.second or dt.microsecond else "%Y-%m-%dT%H:%M") + "Z"


@given(st.integers(-62_135_596_800_000 + 86_400_000, 253_402_300_799_999))
def test_ms_to_iso_equals_datetime_formatting(ms):
    assert ms_to_iso(ms) == by_datetime(ms)


@given(st.integers(0, 4_102_444_800_000 // 60_000).map(lambda m: m * 60_000))
def test_minute_times_round_trip(ms):
    assert ms_to_iso(ms).endswith("Z") and len(ms_to_iso(ms)) == 17
    assert parse_utc(ms_to_iso(ms)) == ms


def test_edges():
    assert ms_to_iso(0) == "1970-01-01T00:00Z"
    assert ms_to_iso(1) == "1970-01-01T00:00:00Z"  # a millisecond shows seconds, as datetime does
    assert ms_to_iso(-1) == "1969-12-31T23:59:59Z"
    assert ms_to_iso(1_583_971_200_000) == "2020-03-12T00:00Z"
    assert ms_to_iso(1_583_971_230_000) == "2020-03-12T00:00:30Z"
