"""The paper/backtest account of one isolated one-way position (algorithms.md §4.5, §5.5-§5.8).

    wallet = deposit + Σ realised − Σ fees + Σ funding          (§5.8; `check_identity` asserts it exactly)
    equity = wallet + position·(mark − entry)
    DD     = 1 − equity / peak_equity                            (peak over every booked event and path vertex)

Cash amounts (realised PnL, fees, funding, lost margin) are booked on the 1e-10 grid (`money`), so every sum is an
exact Decimal sum. Realised PnL is split into the grid profit of matched pairs (§4.5: a fill whose order carries
`pair_price` books qty·(sell − buy)) and the rest (initial position, stops, closes, liquidation and the VWAP
remainder of grid fills); the two always add up to the realised PnL. The entry price is the volume-weighted
average of the opening fills, reset when the position closes or flips. Margin is isolated: |position|·entry/λ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from gridcore.domain.orders import Fill, Liquidation, OrderSide, from_plain, money, to_plain
from gridcore.errors import GridError, InputError
from gridcore.params import LeverageTier
from gridcore.risk.margin import liquidation_price

ZERO = Decimal(0)
KILL_QUANTUM = Decimal("1E-12")  # the drawdown kill level is rounded to this grid, one step on the adverse side


class IdentityError(GridError):
    """The account broke the §5.8 accounting identity (a bug, never a market condition)."""


class _AccountView:
    """The derived figures, shared by the frozen state and the working ledger."""

    position: Decimal
    entry: Decimal
    wallet: Decimal
    mark: Decimal | None
    peak_equity: Decimal
    leverage: int
    realised_grid: Decimal
    realised_other: Decimal

    @property
    def realised(self) -> Decimal:
        return self.realised_grid + self.realised_other

    @property
    def unrealised(self) -> Decimal:
        return ZERO if self.position == 0 or self.mark is None else self.position * (self.mark - self.entry)

    @property
    def equity(self) -> Decimal:
        return self.wallet + self.unrealised

    @property
    def drawdown(self) -> Decimal:
        return 1 - self.equity / self.peak_equity

    @property
    def isolated_margin(self) -> Decimal:
        return abs(self.position) * self.entry / self.leverage


@dataclass(frozen=True)
class LedgerState(_AccountView):
    """The account, frozen (the engine's state holds one)."""

    deposit: Decimal
    leverage: int
    wallet: Decimal
    peak_equity: Decimal
    position: Decimal = ZERO
    entry: Decimal = ZERO
    realised_grid: Decimal = ZERO
    realised_other: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    slippage_cost: Decimal = ZERO
    mark: Decimal | None = None
    max_drawdown_seen: Decimal = ZERO
    last_funding_ms: int | None = None
    fill_count: int = 0
    liquidation_count: int = 0

    @classmethod
    def new(cls, deposit: Decimal, leverage: int) -> LedgerState:
        if deposit <= 0:
            raise InputError(f"expected a deposit > 0, was {deposit}")
        if leverage < 1:
            raise InputError(f"expected leverage >= 1, was {leverage}")
        return cls(deposit=deposit, leverage=leverage, wallet=deposit, peak_equity=deposit)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerState:
        return from_plain(cls, data)


_FIELDS = tuple(f.name for f in dataclasses.fields(LedgerState))


class Ledger(_AccountView):
    """The mutable working copy of a LedgerState (same fields, plain attributes); `snapshot()` freezes it."""

    deposit: Decimal
    funding: Decimal
    fees: Decimal
    slippage_cost: Decimal
    max_drawdown_seen: Decimal
    last_funding_ms: int | None
    fill_count: int
    liquidation_count: int

    def __init__(self, state: LedgerState):
        self.__dict__.update(state.__dict__)  # the fields, copied at once (this runs for every engine bar)

    def snapshot(self) -> LedgerState:
        d = self.__dict__
        frozen = object.__new__(LedgerState)  # LedgerState has no __post_init__: its __init__ would only assign
        frozen.__dict__.update({name: d[name] for name in _FIELDS})
        return frozen

    # --- reads --------------------------------------------------------------------------------------------------

    def equity_at(self, mark: Decimal) -> Decimal:
        return self.wallet + self.position * (mark - self.entry)

    def liquidation_price(self, tiers: tuple[LeverageTier, ...]) -> Decimal | None:
        """Mark price that liquidates the isolated position (None when flat or unreachable)."""
        if self.position == 0:
            return None
        side = 1 if self.position > 0 else -1
        return liquidation_price(side, self.position, self.entry, self.isolated_margin, tiers)

    def kill_price(self, max_drawdown: Decimal) -> Decimal | None:
        """Mark price at which DD reaches max_drawdown with the current position and peak (None when flat or never).

        Rounded to KILL_QUANTUM and one more step on the adverse side, so DD at that mark is >= max_drawdown
        despite the 28-digit division.
        """
        if self.position == 0:
            return None
        floor = (1 - max_drawdown) * self.peak_equity
        m = self.entry + (floor - self.wallet) / self.position
        if self.position > 0:
            m = m.quantize(KILL_QUANTUM, rounding=ROUND_FLOOR) - KILL_QUANTUM
            return m if m > 0 else None
        return m.quantize(KILL_QUANTUM, rounding=ROUND_CEILING) + KILL_QUANTUM

    # --- events -------------------------------------------------------------------------------------------------

    def mark_to(self, mark: Decimal) -> Decimal:
        """Mark the position to `mark`, raise the peak when equity makes a new high; returns the drawdown."""
        if mark <= 0:
            raise InputError(f"expected a mark price > 0, was {mark}")
        eq = self.equity_at(mark)
        if eq > self.peak_equity:
            self.peak_equity = eq
        dd = 1 - eq / self.peak_equity
        self.mark = mark
        if dd > self.max_drawdown_seen:
            self.max_drawdown_seen = dd
        return dd

    def apply_fill(self, fill: Fill) -> tuple[Decimal, Decimal]:
        """Book a fill; returns (realised PnL, of which grid pair profit)."""
        signed = fill.signed_qty
        pos, entry = self.position, self.entry
        realised = ZERO
        if pos == 0 or (pos > 0) == (signed > 0):
            new_pos = pos + signed
            new_entry = (abs(pos) * entry + fill.qty * fill.price) / abs(new_pos)
        else:
            closing = min(abs(signed), abs(pos))
            realised = money(closing * (fill.price - entry) * (1 if pos > 0 else -1))
            new_pos = pos + signed
            if new_pos == 0:
                new_entry = ZERO
            else:
                new_entry = entry if (new_pos > 0) == (pos > 0) else fill.price  # reduced, or flipped at the fill
        grid = ZERO
        if fill.pair_price is not None:
            grid = money(fill.qty * (fill.price - fill.pair_price) * (1 if fill.side is OrderSide.SELL else -1))
        self.position, self.entry = new_pos, new_entry
        self.realised_grid += grid
        self.realised_other += realised - grid
        self.fees += fill.fee
        self.slippage_cost += fill.slippage_cost
        self.wallet += realised - fill.fee
        self.fill_count += 1
        return realised, grid

    def apply_funding(self, ts_ms: int, rate: Decimal, mark: Decimal) -> Decimal | None:
        """Funding at a funding time: −position·mark·rate when a position is open (None when flat)."""
        if self.last_funding_ms is not None and ts_ms <= self.last_funding_ms:
            raise InputError(f"expected a funding time after {self.last_funding_ms}, was {ts_ms}")
        self.last_funding_ms = ts_ms
        if self.position == 0:
            return None
        cash = money(-self.position * mark * rate)
        self.funding += cash
        self.wallet += cash
        return cash

    def liquidate(self, ts_ms: int, price: Decimal, fee_rate: Decimal = ZERO) -> Liquidation:
        """Close at the liquidation price and lose the whole isolated margin (§8.8); the clearance fee, if any,
        is part of the lost margin."""
        if self.position == 0:
            raise InputError("expected an open position to liquidate, was flat")
        margin = money(self.isolated_margin)
        fee = min(money(abs(self.position) * price * fee_rate), margin)
        record = Liquidation(ts_ms, self.position, self.entry, price, margin, fee)
        self.position, self.entry = ZERO, ZERO
        self.realised_other -= margin - fee
        self.fees += fee
        self.wallet -= margin
        self.liquidation_count += 1
        return record

    def reset_peak(self) -> None:
        """Take the current equity as the new peak (an operator reset after the kill switch)."""
        self.peak_equity = self.equity
        self.max_drawdown_seen = ZERO

    # --- audit --------------------------------------------------------------------------------------------------

    def check_identity(self) -> None:
        check_identity(self)


def check_identity(s: LedgerState | Ledger) -> None:
    """Raise IdentityError unless §5.8 holds exactly and the position fields are consistent."""
    expected = s.deposit + s.realised_grid + s.realised_other - s.fees + s.funding
    problems = []
    if s.wallet != expected:
        problems.append(f"expected wallet = deposit + realised − fees + funding = {expected}, was {s.wallet}")
    if (s.position == 0) != (s.entry == 0) or s.entry < 0:
        problems.append(f"expected entry 0 exactly when flat (entry > 0 otherwise), was position {s.position} "
                        f"entry {s.entry}")
    if s.fees < 0 or s.slippage_cost < 0:
        problems.append(f"expected fees and slippage >= 0, was {s.fees} and {s.slippage_cost}")
    if problems:
        raise IdentityError("; ".join(problems))
