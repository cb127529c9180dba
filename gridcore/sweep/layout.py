"""Codes and index constants of the sweep kernel's flat state arrays (indices are plain ints: numba folds them as
compile-time constants).

Units: prices and marks are gridcore.bars 1e-8 units (int64 in the market and the book, float64 where a value can
leave the tick grid: the VWAP entry, marks on a mark path, thresholds); quantities are whole steps of the symbol's
step size (int64); money is float64 USDT. `P_QP` converts steps·units to USDT.
"""

from __future__ import annotations

import numpy as np

# Codes are numpy int64 scalars: numba types them int64, so functions taking one compile once (a plain int
# constant passed to a jitted function is a Literal type and compiles a specialisation per value).
_i = np.int64
NONE = _i(-1)  # no level, no pair price, no order to keep
YES, NO = np.bool_(True), np.bool_(False)

# --- strategy status, direction, side, kind, fill reason, exit kind (codes) ------------------------------------------
IDLE, ACTIVE, CLOSING, HALTED = _i(0), _i(1), _i(2), _i(3)
LONG, NEUTRAL, SHORT = _i(1), _i(0), _i(-1)
BUY, SELL = _i(1), _i(-1)
LIMIT, STOP = _i(0), _i(1)
R_GRID, R_INITIAL, R_STOP, R_RANGE_BREAK, R_KILL_SWITCH, R_LIQUIDATION, R_CLOSE = (_i(0), _i(1), _i(2), _i(3), _i(4),
                                                                             _i(5), _i(6))
REASONS = ("GRID", "INITIAL", "STOP", "RANGE_BREAK", "KILL_SWITCH", "LIQUIDATION", "CLOSE")
X_STOP, X_RANGE_BREAK, X_LIQUIDATION, X_ADVERSE_FIRE, X_KILL_SWITCH = _i(0), _i(1), _i(2), _i(3), _i(4)
EXITS = ("STOP", "RANGE_BREAK", "LIQUIDATION", "ADVERSE_FIRE", "KILL_SWITCH")
PATH_RULES = ("bar_direction", "adaptive", "high_first")

# --- hit kinds of one walk step ------------------------------------------------------------------------------------
HK_NONE, HK_VERTEX, HK_ORDER, HK_LIQ, HK_KILL = _i(0), _i(1), _i(2), _i(3), _i(4)
RANK_LIQUIDATION, RANK_STOP, RANK_KILL, RANK_LIMIT = _i(0), _i(1), _i(2), _i(3)  # gridcore.sim.matching

# --- kernel return codes and entry modes ------------------------------------------------------------------------------
RC_END, RC_SIGNAL, RC_FULL, RC_ERROR = _i(0), _i(1), _i(2), _i(3)
MODE_CHECK, MODE_NO_START, MODE_START = _i(0), _i(1), _i(2)

# --- F: float64 state --------------------------------------------------------------------------------------------
F_WALLET = 0
F_ENTRY = 1  # units
F_RGRID = 2
F_ROTHER = 3
F_FEES = 4
F_FUNDING = 5
F_SLIP = 6
F_PEAK = 7
F_MARK = 8  # units; the ledger's last mark
F_MAXDD = 9
F_LP = 10  # liquidation price (units) of the current position; NaN: none
F_TOPFALL = 11  # highest trigger of an order that fills on a falling price (units); -inf: none
F_LOWRISE = 12  # lowest trigger of an order that fills on a rising price; +inf: none
F_WT = 13  # walk: position along the current segment
F_WPRICE = 14  # walk: current trade price (units)
F_WMARK = 15  # walk: current mark (units)
F_HIT_T = 16  # the pending hit: position, price, mark, taker reference (NaN: maker)
F_HIT_PRICE = 17
F_HIT_MARK = 18
F_HIT_REF = 19
F_SLIPPAGE = 20  # market/stop slippage of the bar being processed
NF = 21

# --- I: int64 state ------------------------------------------------------------------------------------------------
I_POS = 0  # signed position in steps
I_STATUS = 1
I_SEQ = 2  # the engine's order sequence number (ids break ties between hits)
I_GRIDS = 3  # grids started
I_BRK_COUNT = 4
I_BRK_SIDE = 5
I_NORD = 6  # open orders in the book
I_NFILL = 7
I_NEXIT = 8
I_NLIQ = 9
I_KILLING = 10
I_HAS_GRID = 11
I_DIR = 12
I_NLEV = 13
I_S1C = 14  # ceil(S1 units): close < S1  <=>  close_units < I_S1C
I_S2C = 15
I_R1F = 16  # floor(R1 units): close > R1  <=>  close_units > I_R1F
I_R2F = 17
I_HAS_FRESH = 18  # an order placed in the last bar becomes active in the next one (checked as fresh there)
I_WP = 19  # first signal window not yet closed
I_WK = 20  # walk: current segment
I_WN = 21  # walk: number of path points
I_WGAP = 22  # walk: 1 on the gap segment C_{t-1} -> O
I_FQ_HEAD = 23  # fresh queue (order seqs), head and tail
I_FQ_TAIL = 24
I_BAR = 25  # index of the bar being processed
I_ERR = 26  # 1: a bracket table without a bracket holding the liquidation notional (the engine raises)
I_HIT_ROW = 27  # the pending hit's book row (orders)
I_HIT_SEG = 28
I_BAR_MS = 29  # open time of the bar being processed
I_NSLOW = 30  # bars walked by process_bar (statistics)
I_FULLSCAN = 31  # walk: scan every order on the next segment (Walk._full_scan)
I_SP = 32  # next equity sample (index into the sampled bars)
NI = 33

# --- book: int64 [max orders, NB], rows in creation (seq) order ----------------------------------------------------
B_PRICE = 0  # limit or stop price (units)
B_SIDE = 1
B_KIND = 2
B_QTY = 3  # steps (0 for the close-position stop)
B_FILLED = 4
B_LEVEL = 5  # -1: none
B_SEQ = 6
B_ACTIVE = 7  # active_from_ms
B_PAIR = 8  # pair price (units), -1: none
B_OPENS = 9
B_BF = 10  # quantity filled in bar B_BFBAR (participation cap)
B_BFBAR = 11
B_TRIG = 12  # trigger price (units): P − θ for a buy limit, P + θ for a sell limit, P for a stop
B_FALL = 13  # 1: triggered by a falling price (buy limit, sell stop)
NB = 14

# --- P: float64 parameters of one configuration -----------------------------------------------------------------
P_MAXDD = 0
P_MAKER = 1
P_TAKER = 2
P_LIQFEE = 3
P_DEFRATE = 4
P_QP = 5  # USDT per (step x unit)
P_LEV = 6
P_STEP = 7  # base asset per step
NP = 8

# --- Q: int64 parameters of one configuration -------------------------------------------------------------------
Q_THETA = 0  # trade-through distance (units)
Q_SAMEBAR = 1
Q_PATH = 2
Q_RBC = 3  # range_break_closes
Q_ADVERSE = 4
Q_HISTFUND = 5  # funding_source == "history"
Q_LIQ = 6  # liquidation modelled (perpetual)
Q_MINQTY = 7  # steps
Q_MINNOT = 8  # min notional in steps x units (ceil)
Q_CAP = 9  # participation cap on
Q_TICK = 10  # units
Q_FAST = 11  # 1: bars where nothing can happen take the fast path (0: every bar walks; for tests)
Q_BEYOND = 12  # risk.exit_beyond_range: a range break on either side ends any grid
NQ = 13

# --- market: int64 [bars, NM] ----------------------------------------------------------------------------------------
M_MS = 0
M_O = 1
M_H = 2
M_L = 3
M_C = 4
M_HASM = 5  # 1: a mark-price bar exists for this bar
M_MO = 6
M_MH = 7
M_ML = 8
M_MC = 9
M_FIRE = 10
NM = 11

# --- per-bar flags: int8 [bars] (the fast path reads these and O, H, L, C only) -------------------------------------
FL_FUNDING = 1  # funding events inside the bar
FL_MARK = 2  # a mark bar exists
FL_FIRE_SHIFT = 2  # fire direction + 1 in bits 2-3

# --- fills: int64 [cap, NFI] and float64 [cap, NFF] --------------------------------------------------------------
FI_BAR = 0
FI_SIDE = 1
FI_QTY = 2
FI_REASON = 3
FI_TAKER = 4
FI_LEVEL = 5
FI_SEQ = 6  # seq of the order (the market order's own seq for market fills)
FI_POS = 7  # position after the fill
NFI = 8
FF_PRICE = 0  # units
FF_FEE = 1
FF_REF = 2  # units
FF_SLIPCOST = 3
FF_EQUITY = 4
NFF = 5

# --- exits: int64 [cap, 2] -----------------------------------------------------------------------------------------
EX_BAR, EX_KIND = 0, 1

# --- start plan header: int64 [NH] ---------------------------------------------------------------------------------
H_DIR = 0
H_INITIAL = 1  # signed steps
H_STOP = 2  # units, -1: none
H_STOP_SHORT = 3
H_S1C = 4
H_S2C = 5
H_R1F = 6
H_R2F = 7
H_NLEV = 8
H_NORD = 9
NH = 10
# plan orders: int64 [n, 4]
PO_LEVEL, PO_SIDE, PO_PRICE, PO_QTY = 0, 1, 2, 3
