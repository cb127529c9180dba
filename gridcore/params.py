"""The strategy parameter set: every knob of docs/algorithms.md, typed, validated, hashable and serialisable.

Defaults are the §7 table and the §8 decisions. Floats are analysis knobs, `Decimal` holds money, fee and rate
knobs (they feed the order/accounting layer), `Literal` holds choices. `params_from_dict` accepts partial
dicts (missing keys take defaults) and reports every problem at once in one ConfigError; the canonical JSON
(sorted keys, no whitespace, Decimals as normalised strings) gives a hash that is stable across runs and machines.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import hashlib
import json
import math
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal

import tomli_w
import yaml

from gridcore.errors import ConfigError
from gridcore.timeframes import INTERVAL_MS

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]
assert set(typing.get_args(Interval)) == set(INTERVAL_MS), "Interval must list exactly gridcore.timeframes.INTERVAL_MS"


def knob(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None,
         ge: Any = None, gt: Any = None, le: Any = None, lt: Any = None, iso_date: bool = False) -> Any:
    """A documented dataclass field with optional bounds (checked by params_from_dict)."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "iso_date": iso_date}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --- groups ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeframeParams:
    """Which bars each stage reads and how long its outputs stay usable (§8.1)."""

    analysis_interval: Interval = knob("4h", "bars for MA25, ATR and the squeeze; the scanner evaluates at their close")
    trigger_interval: Interval = knob("15m", "bars the trigger reads for VSA confirmation")
    scan_interval: Interval = knob("4h", "how often the scanner rebuilds zones")
    zone_valid_scans: int = knob(2, "a zone stays valid for this many scan intervals (2 x 4h = 8h)", ge=1)
    signal_expiry_bars: int = knob(2, "a start signal expires after this many trigger bars (2 x 15m = 30 min)", ge=1)


@dataclass(frozen=True)
class VolumeProfileParams:
    """The VPVR histogram, value area and nodes (§1)."""

    interval: Interval = knob("1h", "bars the profile is built from")
    lookback_bars: int = knob(720, "closed bars in the visible range (720 x 1h = 30 days)", ge=1)
    row_mode: Literal["rows", "ticks"] = knob("rows", "row layout: a fixed number of rows or a fixed height in ticks")
    rows: int = knob(100, "number of rows when row_mode = rows (50-200 is reasonable)", ge=2)
    ticks_per_row: int = knob(10, "row height in ticks when row_mode = ticks", ge=1)
    distribution: Literal["uniform", "triangular", "path", "ltf", "close"] = knob(
        "uniform", "how a bar's volume is spread over rows (§1.3)")
    ltf_interval: Interval = knob("1m", "lower timeframe used when distribution = ltf")
    va_pct: float = knob(0.70, "value-area share of total volume", gt=0, le=1)
    va_step: Literal[1, 2] = knob(2, "rows added per value-area step (2 = CBOT method)")
    va_bounds: Literal["edges", "centres"] = knob("edges", "VAL/VAH reported as outer row edges or row centres")
    node_method: Literal["peaks", "threshold"] = knob("peaks", "HVN/LVN by smoothed find_peaks or by the mean+std rule")
    smooth_sigma: float = knob(1.5, "Gaussian smoothing sigma in rows before peak finding (0 = none)", ge=0)
    hvn_prominence: float = knob(0.10, "minimum HVN/LVN prominence as a fraction of max(smoothed volume)", ge=0, le=1)
    hvn_distance: int = knob(3, "minimum distance between HVNs in rows", ge=1)
    threshold_std: float = knob(1.0, "threshold rule: HVN if volume >= mean + this x std", ge=0)
    lvn_median_frac: float = knob(0.5, "threshold rule: LVN if volume <= this x median", ge=0, le=1)


@dataclass(frozen=True)
class BoxParams:
    """The four-peaks box S2 < S1 < price < R1 < R2 (§2.3)."""

    mode: Literal["split", "global"] = knob("split", "k=2 per side of the price, or k=4 globally with split fallback")
    level: Literal["peak", "centroid"] = knob("peak", "a cluster's level: its own POC row or its weighted centroid")
    eps_bins: int = knob(1, "rows within this many bins of the price belong to neither side", ge=0)
    gap_atr: float = knob(0.5, "minimum S1-S2 and R2-R1 gap in ATRs", ge=0)
    gap_pct: float = knob(0.003, "minimum gap as a fraction of the price (the larger of the two applies)", ge=0, lt=1)
    min_cluster_share: float = knob(0.05, "each cluster holds at least this share of its side's volume", ge=0, le=0.5)


@dataclass(frozen=True)
class MaParams:
    """MA25 confluence snap and trend bias, and the ATR used across the analysis (§2.4, §8.4)."""

    kind: Literal["sma", "ema"] = knob("sma", "moving-average type over closes of the analysis interval")
    length: int = knob(25, "moving-average length in bars", ge=2)
    atr_len: int = knob(14, "Wilder ATR length in bars (box gap, MA tolerance, stop buffer)", ge=1)
    tol_atr: float = knob(0.25, "snap/near tolerance in ATRs", ge=0)
    tol_pct: float = knob(0.002, "snap/near tolerance as a fraction of the price (the larger applies)", ge=0, lt=1)
    confluence_snap: bool = knob(True, "move the level nearest the MA onto it when within tolerance")
    slope_lookback: int = knob(5, "slope = (m_t - m_{t-k}) / ATR with this k", ge=1)
    slope_min: float = knob(0.5, "|slope| at or above this (with price on the same side) sets the bias", ge=0)


@dataclass(frozen=True)
class SqueezeParams:
    """TTM squeeze (LazyBear variant) and the analyzer's state machine (§2.5, §8.5)."""

    bb_len: int = knob(20, "Bollinger basis and stdev length", ge=2)
    bb_mult: float = knob(2.0, "Bollinger width in stdevs", gt=0)
    bb_ddof: Literal[0, 1] = knob(0, "stdev degrees of freedom (0 = population, as Pine's ta.stdev)")
    kc_len: int = knob(20, "Keltner basis and range-average length", ge=2)
    kc_mult: float = knob(1.5, "Keltner width in range averages", gt=0)
    use_true_range: bool = knob(True, "Keltner range is SMA(true range); off = SMA(high - low)")
    mom_len: int = knob(20, "momentum linear-regression and highest/lowest length", ge=2)
    min_on_bars: int = knob(3, "a fire needs at least this many consecutive squeeze-on bars before it", ge=1)
    fire_window: int = knob(5, "state FIRED lasts this many bars after a fire", ge=1)
    ranging_window: int = knob(20, "RANGING looks back this many bars for momentum zero crossings", ge=2)
    ranging_crosses: int = knob(2, "RANGING needs at least this many zero crossings in the window", ge=1)
    ranging_fall_bars: int = knob(3, "or |momentum| falling this many bars in a row", ge=1)
    gating: bool = knob(True, "apply the §8.5 start gating by squeeze state (off = ignore the state)")


@dataclass(frozen=True)
class VsaParams:
    """VSA bar features, signal thresholds and the start rule windows (§3)."""

    lookback: int = knob(20, "N: bars in the spread/volume averages, range highs/lows, trend SMA and ATR", ge=2)
    wide: float = knob(1.5, "wide spread: spread / average >= this", gt=0)
    narrow: float = knob(0.7, "narrow spread: spread / average <= this", gt=0)
    high_vol: float = knob(1.5, "high volume: volume / average >= this", gt=0)
    ultra_vol: float = knob(2.0, "ultra-high volume: volume / average >= this", gt=0)
    close_high: float = knob(0.7, "close location at or above this is a high close", ge=0, le=1)
    close_low: float = knob(0.3, "close location at or below this is a low close", ge=0, le=1)
    lowvol_prev_bars: int = knob(2, "low volume: below each of this many previous bars (and below average)", ge=1)
    sc_close_min: float = knob(0.3, "selling climax closes off the low: close location >= this", ge=0, le=1)
    sv_low_window: int = knob(5, "stopping volume: or a new low of this many bars", ge=1)
    sv_close_min: float = knob(0.45, "stopping volume: close location >= this", ge=0, le=1)
    test_close_min: float = knob(0.6, "test: close location >= this", ge=0, le=1)
    test_success_close_min: float = knob(0.5, "test succeeds if the next bar is up with close location >= this",
                                         ge=0, le=1)
    spring_delta_ticks: int = knob(1, "spring: low at least this many ticks under the level", ge=0)
    spring_range_exclude: int = knob(3, "spring: the range low excludes this many most recent bars", ge=0)
    spring_close_min: float = knob(0.5, "spring: close location >= this", ge=0, le=1)
    spring_strong_rv: float = knob(1.0, "a spring with relative volume <= this is the strong kind", ge=0)
    shakeout_close_min: float = knob(0.7, "shakeout: close location >= this", ge=0, le=1)
    upthrust_close_max: float = knob(0.3, "upthrust: close location <= this", ge=0, le=1)
    nd_close_max: float = knob(0.5, "no demand: close location <= this", ge=0, le=1)
    evr_effort_high: float = knob(1.5, "absorption: relative volume >= this", ge=0)
    evr_result_low: float = knob(0.3, "absorption: |close change| / ATR <= this", ge=0)
    evr_effort_low: float = knob(0.7, "ease of move: relative volume <= this", ge=0)
    evr_result_high: float = knob(1.0, "ease of move: |close change| / ATR >= this", ge=0)
    strength_window: int = knob(20, "strength signal (SC/SV/SO/SP near support) within this many bars", ge=1)
    retest_window: int = knob(5, "retest (NS/T) after the strength signal within this many bars", ge=1)
    weak_window: int = knob(5, "weakness (UT/ND near resistance) within this many bars vetoes", ge=1)


@dataclass(frozen=True)
class GridParams:
    """Grid levels, spacing and order type (§4, §8.3)."""

    grid_type: Literal["geometric", "arithmetic"] = knob("geometric", "equal ratio or equal price step")
    range_mode: Literal["s1_r1", "s2_r2"] = knob("s1_r1", "grid range [S1, R1], or widened to [S2, R2]")
    breakeven_fees: Literal["maker_maker", "maker_taker", "taker_taker"] = knob(
        "maker_maker", "fee pair of the break-even ratio r* (post-only grids pay maker both ways)")
    min_spacing_breakeven_mult: Decimal = knob(Decimal("3"), "minimum spacing >= this x (r* - 1)", ge=0)
    min_spacing_pct: Decimal = knob(Decimal("0.0015"), "minimum spacing >= this fraction of the price", ge=0, lt=1)
    min_spacing_ticks: int = knob(2, "minimum spacing >= this many ticks", ge=0)
    max_spacing_atr: float = knob(1.0, "spacing at most this many ATRs of the execution interval", gt=0)
    time_in_force: Literal["GTX", "GTC"] = knob("GTX", "grid limit orders: GTX = post-only (maker fees)")


@dataclass(frozen=True)
class CostParams:
    """Fees, slippage and funding (§5.4-§5.6, §8.8)."""

    maker_fee: Decimal = knob(Decimal("0.0002"), "maker fee rate (VIP0, no BNB discount)", ge=0, lt=Decimal("0.01"))
    taker_fee: Decimal = knob(Decimal("0.0005"), "taker fee rate (VIP0, no BNB discount)", ge=0, lt=Decimal("0.01"))
    slippage: Decimal = knob(Decimal("0.0005"), "market/stop fill slippage as a fraction of the reference", ge=0,
                             lt=1)
    stress_slippage: Decimal = knob(Decimal("0.0010"), "stress slippage (risk sizing, stress runs)", ge=0, lt=1)
    crash_range_factor: Decimal = knob(Decimal("0.25"), "crash stress: slippage >= this x (high - low) / open",
                                       ge=0, le=1)
    funding_source: Literal["history", "constant"] = knob("history", "realised funding rates, or the default rate")
    default_funding_rate: Decimal = knob(Decimal("0.0001"), "rate per funding interval when none is known",
                                         ge=Decimal("-0.03"), le=Decimal("0.03"))
    liquidation_fee: Decimal = knob(Decimal("0"), "extra clearance fee on liquidation (0: the whole margin is lost)",
                                    ge=0, lt=Decimal("0.05"))


@dataclass(frozen=True)
class FillPolicyParams:
    """One limit-fill policy of the paper matcher (§5.2-§5.3)."""

    path: Literal["bar_direction", "adaptive", "high_first"] = knob(
        "bar_direction", "intrabar path: by bar direction, nearest extreme first, or always O-H-L-C")
    trade_through_ticks: int = knob(1, "a resting limit fills when price trades this many ticks through (0 = touch)",
                                    ge=0)
    same_bar_refill: bool = knob(False, "a counter-order placed during a bar may fill in the same bar")


def _optimistic_policy() -> FillPolicyParams:
    return FillPolicyParams(trade_through_ticks=0, same_bar_refill=True)


@dataclass(frozen=True)
class FillParams:
    """Headline (conservative) and optimistic fill policies, and when to re-run (§5, §8.6)."""

    headline: FillPolicyParams = knob(doc="policy of reported results", factory=FillPolicyParams)
    optimistic: FillPolicyParams = knob(doc="policy reported beside the headline", factory=_optimistic_policy)
    report_optimistic: bool = knob(True, "backtests also run and report the optimistic policy")
    rerun_gap: float = knob(0.20, "re-run on finer bars when the two policies' PnL differ by more than this", ge=0)
    rerun_interval: Interval = knob("1m", "interval of that re-run")
    participation_cap: bool = knob(False, "cap limit fills per bar at participation_rate x bar volume")
    participation_rate: float = knob(0.1, "share of a bar's volume a level may fill when capped", gt=0, le=1)


@dataclass(frozen=True)
class RiskParams:
    """Stops, sizing budget, drawdown kill switch and start guards (§6)."""

    stop_buffer_atr: float = knob(0.5, "stop below S2 (above R2) by at least this many ATRs", ge=0)
    stop_buffer_pct: Decimal = knob(Decimal("0.005"), "or by this fraction of the level (the larger applies)", ge=0,
                                    lt=1)
    range_break_closes: int = knob(2, "exit after this many consecutive closes beyond S2/R2", ge=1)
    exit_beyond_range: bool = knob(True, "a long grid also ends after range_break_closes closes above R2 (a short one "
                                         "below S2): the price has left its range on the profitable side")
    exit_on_adverse_fire: bool = knob(True, "exit when the squeeze fires against the inventory")
    liq_buffer: Decimal = knob(Decimal("0.02"), "full-inventory liquidation price at least this far beyond the stop",
                               ge=0, lt=1)
    max_drawdown: Decimal = knob(Decimal("0.10"), "kill switch at this drawdown of mark-to-market equity", gt=0, lt=1)
    budget_fraction: Decimal = knob(Decimal("0.8"), "risk budget = this x the remaining drawdown allowance", gt=0,
                                    le=1)
    funding_guard: Decimal = knob(Decimal("0.0005"), "no start when |funding rate| against the side exceeds this",
                                  ge=0)
    max_grids_per_symbol: int = knob(1, "running grids allowed per symbol", ge=1)


@dataclass(frozen=True)
class LeverageTier:
    """One maintenance-margin bracket (Binance leverageBracket fields)."""

    floor: Decimal = knob(doc="notional floor in USDT (exclusive)", ge=0)
    cap: Decimal = knob(doc="notional cap in USDT (inclusive)", gt=0)
    max_leverage: int = knob(doc="maximum initial leverage in this bracket", ge=1)
    mmr: Decimal = knob(doc="maintenance margin rate", gt=0, lt=1)
    cum: Decimal = knob(doc="maintenance amount: cum_n = cum_{n-1} + floor_n x (mmr_n - mmr_{n-1})", ge=0)


def _tier(floor: str, cap: str, lev: int, mmr: str, cum: str) -> LeverageTier:
    return LeverageTier(Decimal(floor), Decimal(cap), lev, Decimal(mmr), Decimal(cum))


# BTCUSDT brackets as announced by Binance on 2021-03-18 (§5.7, [S2b]); cum reproduced by the recurrence.
BTCUSDT_TIERS_2021_03_18: tuple[LeverageTier, ...] = (
    _tier("0", "50000", 125, "0.004", "0"),
    _tier("50000", "250000", 100, "0.005", "50"),
    _tier("250000", "1000000", 50, "0.01", "1300"),
    _tier("1000000", "10000000", 20, "0.025", "16300"),
    _tier("10000000", "20000000", 10, "0.05", "266300"),
    _tier("20000000", "50000000", 5, "0.10", "1266300"),
    _tier("50000000", "100000000", 4, "0.125", "2516300"),
    _tier("100000000", "200000000", 3, "0.15", "5016300"),
    _tier("200000000", "300000000", 2, "0.25", "25016300"),
    _tier("300000000", "500000000", 1, "0.50", "100016300"),
)


@dataclass(frozen=True)
class BracketTable:
    """A dated leverage-bracket snapshot for one symbol (§8.7)."""

    symbol: str = knob("BTCUSDT", "symbol the table belongs to; other symbols are refused for leveraged paper trading")
    as_of: str = knob("2021-03-18", "date of the snapshot (ISO 8601)", iso_date=True)
    source: str = knob("Binance announcement 'Updates to Leverage and Margin Tiers' 2021-03-18 [S2b]",
                       "where the numbers come from")
    tiers: tuple[LeverageTier, ...] = knob(BTCUSDT_TIERS_2021_03_18, "brackets sorted by notional, contiguous")


@dataclass(frozen=True)
class AccountParams:
    """Paper/backtest account, leverage and margin (§4.3, §5.7, §8.7, §8.9)."""

    capital: Decimal = knob(Decimal("10000"), "starting wallet balance in the quote asset", gt=0)
    quote_asset: Literal["USDT"] = knob("USDT", "quote/margin asset")
    leverage: int = knob(3, "leverage of each grid's position", ge=1)
    margin_mode: Literal["isolated"] = knob("isolated", "margin mode (only isolated is modelled)")
    margin_fraction: Decimal = knob(Decimal("0.8"), "alpha: inventory margin <= this x the allocated equity", gt=0,
                                    le=1)
    brackets: BracketTable = knob(doc="leverage brackets used for maintenance margin and liquidation",
                                  factory=BracketTable)


@dataclass(frozen=True)
class ExecutionParams:
    """What drives the paper matcher and when it pauses (§5.1, §6.5, §8.1)."""

    intervals: tuple[Interval, ...] = knob(("1m", "5m", "1h"), "backtests use the finest stored of these, finest first")
    live_prices: Literal["aggTrade", "bookTicker"] = knob("aggTrade", "live paper fills from trades or best bid/ask")
    stale_data_intervals: int = knob(2, "pause placing orders after this many intervals without kline/mark data",
                                     ge=1)


@dataclass(frozen=True)
class StrategyParams:
    """Every knob of the strategy, grouped by area."""

    timeframes: TimeframeParams = knob(doc="timeframes, zone validity, signal expiry", factory=TimeframeParams)
    volume_profile: VolumeProfileParams = knob(doc="VPVR", factory=VolumeProfileParams)
    box: BoxParams = knob(doc="four-peaks box", factory=BoxParams)
    ma: MaParams = knob(doc="MA25 and ATR", factory=MaParams)
    squeeze: SqueezeParams = knob(doc="TTM squeeze and state machine", factory=SqueezeParams)
    vsa: VsaParams = knob(doc="VSA signals", factory=VsaParams)
    grid: GridParams = knob(doc="grid levels", factory=GridParams)
    costs: CostParams = knob(doc="fees, slippage, funding", factory=CostParams)
    fills: FillParams = knob(doc="paper fill policies", factory=FillParams)
    risk: RiskParams = knob(doc="risk management", factory=RiskParams)
    account: AccountParams = knob(doc="account, leverage, brackets", factory=AccountParams)
    execution: ExecutionParams = knob(doc="execution drivers and guards", factory=ExecutionParams)


def default_params() -> StrategyParams:
    """The §7 defaults and §8 decisions."""
    return StrategyParams()


# --- parsing ----------------------------------------------------------------------------------------------------

_BAD = object()  # a value that failed its field check; the field keeps its default
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _show(v: Any) -> str:
    return _dec_text(v) if isinstance(v, Decimal) else str(v)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _desc(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _is_params_class(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@cache
def known_paths() -> tuple[str, ...]:
    """Every dotted key of the schema (groups and leaves; list items as name[].key)."""
    out: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            path = _join(prefix, f.name)
            out.append(path)
            tp = _hints(cls)[f.name]
            if _is_params_class(tp):
                walk(tp, path)
            elif typing.get_origin(tp) is tuple and _is_params_class(typing.get_args(tp)[0]):
                walk(typing.get_args(tp)[0], path + "[]")

    walk(StrategyParams, "")
    return tuple(out)


def _suggest(key: str, siblings: list[str], path: str) -> str | None:
    # The key may belong to another group (grid.maker_fee -> costs.maker_fee).
    elsewhere = [p for p in known_paths() if p.rsplit(".", 1)[-1] == key]
    if elsewhere:
        return elsewhere[0]
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
    if close:
        return _join(path, close[0])
    close = difflib.get_close_matches(_join(path, key), known_paths(), n=1, cutoff=0.7)
    return close[0] if close else None


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _bounds_problem(value: Any, meta: Mapping[str, Any]) -> str | None:
    bounds = [(op, meta[key]) for key, op in _BOUNDS if meta.get(key) is not None]
    if all(_OPS[op](value, bound) for op, bound in bounds):
        return None
    wanted = " and ".join(f"{op} {bound}" for op, bound in bounds)
    return f"expected {wanted}, was {_show(value)}"


def _parse_scalar(tp: Any, value: Any, meta: Mapping[str, Any]) -> tuple[Any, str | None]:
    """Coerce one scalar; returns (value, None) or (_BAD, 'expected ..., was ...')."""
    if tp is bool:
        return (value, None) if isinstance(value, bool) else (_BAD, f"expected true or false, was {_desc(value)}")
    if isinstance(value, bool):
        return _BAD, f"expected {'a number' if tp in (int, float, Decimal) else 'a string'}, was {_desc(value)}"
    if tp is int:
        return (value, None) if isinstance(value, int) else (_BAD, f"expected an integer, was {_desc(value)}")
    if tp is float:
        if not isinstance(value, int | float):
            return _BAD, f"expected a number, was {_desc(value)}"
        if not math.isfinite(value):
            return _BAD, f"expected a finite number, was {value}"
        return float(value) + 0.0, None  # + 0.0 turns -0.0 into 0.0 so equal values hash equally
    if tp is Decimal:
        return _parse_decimal(value)
    if tp is str:
        if meta.get("iso_date") and isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = value.isoformat()  # TOML/YAML may hand over an unquoted date
        if not isinstance(value, str):
            return _BAD, f"expected a string, was {_desc(value)}"
        if meta.get("iso_date"):
            try:
                _dt.date.fromisoformat(value)
            except ValueError:
                return _BAD, f"expected an ISO date such as 2021-03-18, was {value!r}"
        return value, None
    raise TypeError(f"unsupported parameter type {tp!r}")


def _parse_decimal(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, float):
        value = repr(value)  # shortest round-trip text: 0.08 -> Decimal("0.08"), not the binary expansion
    if isinstance(value, Decimal | int | str):
        try:
            d = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            return _BAD, f"expected a decimal number, was {_desc(value)}"
        if not d.is_finite():
            return _BAD, f"expected a finite decimal number, was {value!r}"
        return d, None
    return _BAD, f"expected a decimal number (or its text), was {_desc(value)}"


def _parse_literal(choices: tuple[Any, ...], value: Any) -> tuple[Any, str | None]:
    for c in choices:
        if value == c and type(value) is type(c):
            return c, None
    listed = " | ".join(repr(c) for c in choices)
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    return _BAD, f"expected one of {listed}, was {_desc(value)}{hint}"


class _Parser:
    """Walks a dict against the dataclass schema, collecting every problem with its dotted path."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.bad_paths: set[str] = set()

    def fail(self, path: str, message: str) -> Any:
        self.problems.append(f"{path or 'params'}: {message}")
        self.bad_paths.add(path)
        return _BAD

    def dataclass(self, cls: type, data: Any, path: str) -> Any:
        if isinstance(data, cls):
            data = params_to_dict(data)
        if not isinstance(data, Mapping):
            return self.fail(path, f"expected a table of keys ({cls.__name__}), was {_desc(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in fields:
                hint = _suggest(str(key), list(fields), path)
                where = f"of {path}" if path else "at the top level"
                hint_text = f"did you mean {hint}?" if hint else f"known: {', '.join(fields)}"
                self.fail(_join(path, str(key)), f"expected a known key {where}, was unknown ({hint_text})")
        kwargs = {}
        complete = True
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if name in data:
                value = self.value(_hints(cls)[name], data[name], _join(path, name), f.metadata)
                if value is not _BAD:
                    kwargs[name] = value
                complete &= value is not _BAD or not required
            elif required:
                complete = False
                self.fail(_join(path, name), "expected this key (it has no default), was missing")
        return cls(**kwargs) if complete else _BAD

    def value(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
        if _is_params_class(tp):
            return self.dataclass(tp, value, path)
        origin = typing.get_origin(tp)
        if origin is Literal:
            parsed, problem = _parse_literal(typing.get_args(tp), value)
        elif origin is tuple:
            return self.sequence(typing.get_args(tp)[0], value, path)
        else:
            parsed, problem = _parse_scalar(tp, value, meta)
            if problem is None:
                problem = _bounds_problem(parsed, meta) if tp in (int, float, Decimal) else None
        return self.fail(path, problem) if problem else parsed

    def sequence(self, item_tp: Any, value: Any, path: str) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            return self.fail(path, f"expected a list, was {_desc(value)}")
        items = [self.value(item_tp, v, f"{path}[{i}]", {}) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)


# --- cross-field checks -----------------------------------------------------------------------------------------

CrossCheck = Callable[[StrategyParams], Iterable[str]]
_CHECKS: list[tuple[tuple[str, ...], CrossCheck]] = []


def _check(*paths: str) -> Callable[[CrossCheck], CrossCheck]:
    """Register a cross-field check; it is skipped when a field it reads already failed its own check."""

    def register(fn: CrossCheck) -> CrossCheck:
        _CHECKS.append((paths, fn))
        return fn

    return register


def _compare(p: StrategyParams, path: str, op: str, other: str) -> Iterable[str]:
    """'path op other' must hold; the message names `path`."""
    a, b = _get(p, path), _get(p, other)
    if not _OPS[op](a, b):
        yield f"{path}: expected {op} {other} ({_show(b)}), was {_show(a)}"


def _get(p: Any, path: str) -> Any:
    for key in path.split("."):
        p = getattr(p, key)
    return p


@_check("vsa.close_low", "vsa.close_high")
def check_close_bands(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "vsa.close_low", "<", "vsa.close_high")


@_check("vsa.narrow", "vsa.wide")
def check_spread_bands(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "vsa.narrow", "<", "vsa.wide")


@_check("vsa.high_vol", "vsa.ultra_vol")
def check_volume_bands(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "vsa.ultra_vol", ">=", "vsa.high_vol")


@_check("vsa.evr_effort_low", "vsa.evr_effort_high", "vsa.evr_result_low", "vsa.evr_result_high")
def check_effort_result(p: StrategyParams) -> Iterable[str]:
    yield from _compare(p, "vsa.evr_effort_low", "<", "vsa.evr_effort_high")
    yield from _compare(p, "vsa.evr_result_low", "<", "vsa.evr_result_high")


@_check("vsa.retest_window", "vsa.strength_window")
def check_vsa_windows(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "vsa.retest_window", "<=", "vsa.strength_window")


@_check("costs.maker_fee", "costs.taker_fee")
def check_taker_at_least_maker(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "costs.taker_fee", ">=", "costs.maker_fee")


@_check("costs.slippage", "costs.stress_slippage")
def check_stress_slippage(p: StrategyParams) -> Iterable[str]:
    return _compare(p, "costs.stress_slippage", ">=", "costs.slippage")


@_check("timeframes.trigger_interval", "timeframes.analysis_interval")
def check_trigger_finer(p: StrategyParams) -> Iterable[str]:
    t, a = p.timeframes.trigger_interval, p.timeframes.analysis_interval
    if INTERVAL_MS[t] > INTERVAL_MS[a]:
        yield f"timeframes.trigger_interval: expected no longer than analysis_interval ({a}), was {t}"


@_check("volume_profile.distribution", "volume_profile.ltf_interval", "volume_profile.interval")
def check_ltf_finer(p: StrategyParams) -> Iterable[str]:
    vp = p.volume_profile
    if vp.distribution == "ltf" and INTERVAL_MS[vp.ltf_interval] >= INTERVAL_MS[vp.interval]:
        yield f"volume_profile.ltf_interval: expected finer than interval ({vp.interval}), was {vp.ltf_interval}"


@_check("execution.intervals")
def check_execution_intervals(p: StrategyParams) -> Iterable[str]:
    ivs = p.execution.intervals
    ms = [INTERVAL_MS[i] for i in ivs]
    if not ivs or ms != sorted(set(ms)):
        yield f"execution.intervals: expected a non-empty list, finest first, no repeats, was {list(ivs)}"


@_check("fills.headline", "fills.optimistic")
def check_optimistic_policy(p: StrategyParams) -> Iterable[str]:
    h, o = p.fills.headline, p.fills.optimistic
    if o.trade_through_ticks > h.trade_through_ticks:
        yield (f"fills.optimistic.trade_through_ticks: expected <= fills.headline.trade_through_ticks "
               f"({h.trade_through_ticks}), was {o.trade_through_ticks}")
    if h.same_bar_refill and not o.same_bar_refill:
        yield "fills.optimistic.same_bar_refill: expected true when the headline policy refills, was false"


@_check("account.leverage", "account.brackets.tiers")
def check_leverage_within_first_tier(p: StrategyParams) -> Iterable[str]:
    tiers = p.account.brackets.tiers
    if tiers and p.account.leverage > tiers[0].max_leverage:
        yield (f"account.leverage: expected <= the first bracket's max_leverage ({tiers[0].max_leverage}), "
               f"was {p.account.leverage}")


@_check("account.brackets.tiers")
def check_tiers(p: StrategyParams) -> Iterable[str]:
    """Brackets start at 0, are contiguous and sorted, rates rise, leverage falls, cum follows the recurrence."""
    tiers = p.account.brackets.tiers
    if not tiers:
        yield "account.brackets.tiers: expected at least one bracket, was an empty list"
        return
    prev: LeverageTier | None = None
    expected_cum = Decimal(0)
    for i, t in enumerate(tiers):
        path = f"account.brackets.tiers[{i}]"
        want_floor = prev.cap if prev else Decimal(0)
        if t.floor != want_floor:
            yield f"{path}.floor: expected {want_floor} (the previous cap), was {t.floor}"
        if t.cap <= t.floor:
            yield f"{path}.cap: expected > floor ({t.floor}), was {t.cap}"
        if prev and t.mmr <= prev.mmr:
            yield f"{path}.mmr: expected > the previous bracket's mmr ({prev.mmr}), was {t.mmr}"
        if prev and t.max_leverage > prev.max_leverage:
            yield f"{path}.max_leverage: expected <= the previous ({prev.max_leverage}), was {t.max_leverage}"
        expected_cum += t.floor * (t.mmr - (prev.mmr if prev else Decimal(0)))
        if t.cum != expected_cum:
            yield f"{path}.cum: expected {_dec_text(expected_cum)} by the §5.7 recurrence, was {t.cum}"
        prev = t


def cross_problems(p: StrategyParams, skip: Iterable[str] = ()) -> list[str]:
    """Run every cross-field check, skipping those that read a path in `skip` (or under it)."""
    skip = list(skip)
    out: list[str] = []
    for paths, fn in _CHECKS:
        if any(s == q or s.startswith(q + ".") or s.startswith(q + "[") or q.startswith(s + ".")
               for s in skip for q in paths):
            continue
        out.extend(fn(p))
    return out


def params_from_dict(d: Mapping[str, Any]) -> StrategyParams:
    """Validate a (partial) dict into StrategyParams; every problem is reported at once in one ConfigError."""
    parser = _Parser()
    params = parser.dataclass(StrategyParams, d, "")
    if params is _BAD:
        raise ConfigError("invalid strategy parameters", parser.problems)
    problems = parser.problems + cross_problems(params, parser.bad_paths)
    if problems:
        raise ConfigError(f"invalid strategy parameters ({len(problems)} problem{'s' * (len(problems) > 1)})",
                          problems)
    return params


# --- serialisation ----------------------------------------------------------------------------------------------


def _dec_text(d: Decimal) -> str:
    """Normalised fixed-point text: Decimal('0.00050') -> '0.0005', Decimal('1E+4') -> '10000'."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def to_jsonable(value: Any) -> Any:
    """A params value (group, tuple, Decimal, scalar) as plain JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return _dec_text(value)
    return value


def params_to_dict(p: Any) -> dict[str, Any]:
    """JSON-able nested dict (Decimals as normalised strings, tuples as lists) of StrategyParams or a group."""
    return to_jsonable(p)


def canonical_json(p: StrategyParams) -> str:
    """Sorted keys, no whitespace, ASCII, Decimals as normalised strings: the input of params_hash."""
    return json.dumps(params_to_dict(p), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def params_hash(p: StrategyParams) -> str:
    """sha256 hex of canonical_json(p)."""
    return hashlib.sha256(canonical_json(p).encode("ascii")).hexdigest()


def flatten_params(p: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path (list items of groups as path[i]); lists of scalars are one leaf."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(p):
        path = _join(prefix, f.name)
        value = getattr(p, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten_params(value, path))
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                out.update(flatten_params(item, f"{path}[{i}]"))
        else:
            out[path] = value
    return out


def diff_params(a: StrategyParams, b: StrategyParams) -> list[tuple[str, Any, Any]]:
    """(dotted path, value in a, value in b) for every leaf that differs; None where a list item is missing."""
    fa, fb = flatten_params(a), flatten_params(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k) or (k in fa) != (k in fb)]


def parse_toml_dict(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"expected valid TOML, was not: {e}") from None


def parse_yaml_dict(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"expected valid YAML, was not: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a YAML mapping of parameter groups, was {type(data).__name__}")
    return data


def dump_toml(p: StrategyParams) -> str:
    return tomli_w.dumps(params_to_dict(p))


def load_toml(text: str) -> StrategyParams:
    return params_from_dict(parse_toml_dict(text))


def dump_yaml(p: StrategyParams) -> str:
    return yaml.safe_dump(params_to_dict(p), sort_keys=False, allow_unicode=False)


def load_yaml(text: str) -> StrategyParams:
    return params_from_dict(parse_yaml_dict(text))


def merge_dicts(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else in `overlay` replaces the base value."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """Set d['a']['b'] = value for key 'a.b' (creating tables; 'tiers[2].cum' indexes a list)."""
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise ConfigError(f"expected a dotted key such as risk.max_drawdown, was {key!r}")
    node: Any = d
    for i, part in enumerate(parts):
        name, _, index = part.partition("[")
        last = i == len(parts) - 1
        if index:
            if not index.endswith("]") or not index[:-1].isdigit():
                raise ConfigError(f"expected an index such as tiers[2] in {key!r}, was {part!r}")
            seq = node.get(name) if isinstance(node, dict) else None
            n = int(index[:-1])
            if not isinstance(seq, list) or n >= len(seq):
                raise ConfigError(f"expected {name} to be a list with an item {n} in {key!r}, was not")
            if last:
                seq[n] = value
                return
            node = seq[n]
            continue
        if last:
            node[name] = value
            return
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
