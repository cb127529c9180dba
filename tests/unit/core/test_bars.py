import gzip
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcore.bars import SCALE, Bars, decimal_units, find_gaps, merge_series, resample
from gridcore.errors import DataError, InputError
from gridcore.kline_files import identify, read_funding, read_klines
from tests.reference.naive_bars import naive_gaps, naive_resample

MIN = 60_000


@st.composite
def minute_bars(draw):
    """Random 1m bars with random holes, in int units (prices sane: low <= open, close <= high)."""
    n = draw(st.integers(1, 400))
    present = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    start = draw(st.integers(0, 2000)) * MIN
    ms, rows = [], []
    for i, keep in enumerate(present):
        if not keep:
            continue
        lo = draw(st.integers(1, 10**6))
        hi = lo + draw(st.integers(0, 10**5))
        o = draw(st.integers(lo, hi))
        c = draw(st.integers(lo, hi))
        ms.append(start + i * MIN)
        rows.append((o, hi, lo, c, draw(st.integers(0, 10**12))))
    return ms, rows


@given(minute_bars(), st.sampled_from(["5m", "15m", "1h"]))
def test_resample_equals_naive_and_keeps_only_complete_buckets(data, target):
    ms, rows = data
    bars = Bars("BTCUSDT", "spot", "1m", np.array(ms, np.int64), np.array(rows, np.int64).reshape(-1, 5))
    out = resample(bars, target)
    want_ms, want_rows = naive_resample(ms, rows, MIN, out.interval_ms)
    assert out.open_ms.tolist() == want_ms
    assert out.units.tolist() == [list(r) for r in want_rows]
    assert out.source_interval == "1m" and out.interval == target and out.resampled
    assert np.all(out.open_ms % out.interval_ms == 0)  # aligned to UTC


def test_resample_4h_buckets_start_at_utc_multiples_of_four_hours():
    t0 = 1_583_020_800_000  # 2020-03-01 00:00 UTC
    ms = t0 + np.arange(0, 12 * 60) * MIN  # 12 hours of 1m bars
    units = np.tile(np.array([[1, 2, 1, 1, 1]], np.int64), (ms.size, 1))
    out = resample(Bars("BTCUSDT", "spot", "1m", ms, units), "4h")
    assert [(t - t0) // 3_600_000 for t in out.open_ms] == [0, 4, 8]
    assert out.units[:, 4].tolist() == [240, 240, 240]


def test_resample_refuses_a_finer_or_misaligned_target():
    bars = Bars("BTCUSDT", "spot", "1h", np.array([0], np.int64), np.ones((1, 5), np.int64))
    with pytest.raises(DataError, match="multiple of 1h"):
        resample(bars, "15m")


@given(st.lists(st.integers(0, 50), min_size=0, max_size=60, unique=True))
def test_find_gaps_equals_naive(slots):
    ms = sorted(s * MIN for s in slots)
    g = find_gaps(np.array(ms, np.int64), "1m")
    assert (g.count, g.missing_bars, g.largest_bars) == naive_gaps(ms, MIN)


@given(st.lists(st.integers(0, 30), unique=True), st.lists(st.integers(0, 30), unique=True), st.integers(0, 3))
def test_merge_series_is_an_idempotent_upsert(old, new, value):
    old_ms = np.array(sorted(old), np.int64)
    new_ms = np.array(sorted(new), np.int64)
    old_u = np.ones((old_ms.size, 5), np.int64)
    new_u = np.full((new_ms.size, 5), value, np.int64)
    ms, units, (ins, upd, same) = merge_series(old_ms, old_u, new_ms, new_u)
    assert ms.tolist() == sorted(set(old) | set(new))
    for t in new:  # new values win
        assert units[ms.tolist().index(t)].tolist() == [value] * 5
    assert ins == len(set(new) - set(old))
    assert upd + same == len(set(new) & set(old)) and (upd == 0 or value != 1)
    ms2, units2, (ins2, upd2, _) = merge_series(ms, units, new_ms, new_u)
    assert (ins2, upd2) == (0, 0) and ms2.tolist() == ms.tolist()


def _write(tmp_path, name, lines):
    path = tmp_path / name
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


NAME = "BTCUSDT-1m-spot-2020-01-01_2020-01-01.csv.gz"
HEADER = "open_time,open,high,low,close,volume"
GOOD = ["1577836800000,7195.24,7196.25,7183.14,7186.68,51.642812",
        "1577836860000,7187.67,7188.06,7182.2,7184.03,7.248148"]


def test_read_klines_parses_exact_units(tmp_path):
    path = _write(tmp_path, NAME, [HEADER, *GOOD])
    kf = read_klines(path, identify(path))
    assert kf.bars.open_ms.tolist() == [1577836800000, 1577836860000]
    assert kf.bars.units[0].tolist() == [719524000000, 719625000000, 718314000000, 718668000000, 5164281200]
    assert kf.bars.close[1] == 7184.03 and kf.bars.units[0, 4] / SCALE == 51.642812


def test_exact_duplicate_rows_are_dropped_and_counted(tmp_path):
    path = _write(tmp_path, NAME, [HEADER, GOOD[0], GOOD[0], GOOD[1]])
    kf = read_klines(path, identify(path))
    assert len(kf.bars) == 2 and kf.duplicates == 1


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ([GOOD[0], "1577836860000,nan,7188.06,7182.2,7184.03,7.2"], 3, "NaN"),
        ([GOOD[0], "1577836860000,7187.67,7180.0,7182.2,7184.03,7.2"], 3, "high 7180.0 < low 7182.2"),
        ([GOOD[0], "1577836860000,7187.67,7188.06,7182.2,7184.03,-1"], 3, "negative volume"),
        ([GOOD[1], GOOD[0]], 3, "time goes backwards"),
        ([GOOD[0], "1577836800000,7195.24,7196.25,7183.14,7186.68,1.0"], 3, "appears twice with different values"),
        ([GOOD[0], "1577836870000,7187.67,7188.06,7182.2,7184.03,7.2"], 3, "not on the 1m grid"),
        ([GOOD[0], "1577836860000,7187.67,7188.06,7182.2,7189.03,7.2"], 3, "outside [low"),
        ([GOOD[0], "1577836860000,7187.67,7188.06"], 3, "expected at least 6 columns"),
        ([GOOD[0], "1577836860000,abc,7188.06,7182.2,7184.03,7.2"], 3, "expected a number"),
        ([GOOD[0], "1577836860000,7187.671234567,7188.06,7182.2,7184.03,7.2"], 3, "more than 8 decimals"),
    ],
)
def test_bad_rows_are_refused_naming_file_and_line(tmp_path, rows, line, fragment):
    path = _write(tmp_path, NAME, [HEADER, *rows])
    with pytest.raises(InputError) as e:
        read_klines(path, identify(path))
    assert f"{path}:{line}" in str(e.value) and fragment in str(e.value)


def test_wrong_header_is_refused(tmp_path):
    path = _write(tmp_path, NAME, ["time,o,h,l,c,v", *GOOD])
    with pytest.raises(InputError, match=r":1: expected the header open_time,open"):
        read_klines(path, identify(path))


def test_binance_public_layout_with_microseconds_and_zip(tmp_path):
    import zipfile

    rows = ["1735689600000000,93576.00,93610.93,93537.50,93610.93,8.21827,1735689659999999,768978.6,1807,"
            "4.4,412050.2,0",
            "1735689660000000,93610.93,93652.00,93606.54,93652.00,6.99962,1735689719999999,655284.4,1210,3.4,"
            "319812.1,0"]
    path = tmp_path / "BTCUSDT-1m-2025-01.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("BTCUSDT-1m-2025-01.csv", "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="expected market spot or perp"):
        identify(path)
    kf = read_klines(path, identify(path, market="spot"))
    assert kf.bars.open_ms.tolist() == [1735689600000, 1735689660000]
    assert kf.bars.interval == "1m" and kf.bars.market == "spot" and kf.bars.close[1] == 93652.0


def test_funding_file_keeps_exact_decimals(tmp_path):
    path = _write(tmp_path, "BTCUSDT-fundingRate-perp-2020-03-13_2020-03-13.csv.gz",
                  ["funding_time,funding_rate", "1584086400000,-0.00300000", "1584115200000,0.00010000"])
    ff = read_funding(path, identify(path))
    assert [str(r) for r in ff.rates] == ["-0.00300000", "0.00010000"]
    assert ff.funding_ms.tolist() == [1584086400000, 1584115200000]


def test_file_name_must_say_what_it_is(tmp_path):
    path = _write(tmp_path, "klines.csv.gz", [HEADER, *GOOD])
    with pytest.raises(InputError, match="cannot tell the symbol"):
        identify(path)


@given(minute_bars(), st.integers(0, 400), st.integers(0, 400))
def test_float_rows_equal_the_float_columns_cold_or_warm(data, a, b):
    ms, rows = data
    units = np.array(rows, np.int64).reshape(-1, 5)
    lo, hi = sorted((min(a, len(ms)), min(b, len(ms))))
    cold = Bars("BTCUSDT", "spot", "1m", np.array(ms, np.int64), units)
    warm = Bars("BTCUSDT", "spot", "1m", np.array(ms, np.int64), units).warm()
    columns = (warm.open, warm.high, warm.low, warm.close, warm.volume)
    for rows_of in (cold.float_rows(lo, hi), warm.float_rows(lo, hi)):
        for j, (got, column) in enumerate(zip(rows_of, columns, strict=True)):
            assert got.dtype == np.float64 and got.flags.c_contiguous and not got.flags.writeable
            assert got.tobytes() == column[lo:hi].tobytes() == (units[lo:hi, j] / SCALE).tobytes()
    assert "close" not in cold.__dict__  # reading rows of cold bars converts only those rows


def test_decimal_units_is_exact_or_rounds_as_asked():
    assert decimal_units(Decimal("27123.45")) == 2_712_345_000_000
    assert decimal_units(Decimal("0.00000001")) == 1
    with pytest.raises(InputError, match="expected the stop on the 1e-8 unit grid, was 1.000000001"):
        decimal_units(Decimal("1.000000001"), what="the stop")
    assert decimal_units(Decimal("1.000000001"), ROUND_CEILING) == 100_000_001
    assert decimal_units(Decimal("1.000000009"), ROUND_FLOOR) == 100_000_000
    assert decimal_units(Decimal("-1.000000001"), ROUND_FLOOR) == -100_000_001
