"""Slow, obviously correct references for gridcore.bars."""

from __future__ import annotations


def naive_resample(open_ms: list[int], rows: list[tuple[int, int, int, int, int]], src_ms: int, dst_ms: int):
    buckets: dict[int, list[tuple[int, tuple]]] = {}
    for t, r in zip(open_ms, rows, strict=True):
        buckets.setdefault(t - t % dst_ms, []).append((t, r))
    out_ms, out_rows = [], []
    for b in sorted(buckets):
        members = buckets[b]
        if len(members) != dst_ms // src_ms:
            continue
        out_ms.append(b)
        out_rows.append((members[0][1][0], max(r[1] for _, r in members), min(r[2] for _, r in members),
                         members[-1][1][3], sum(r[4] for _, r in members)))
    return out_ms, out_rows


def naive_gaps(open_ms: list[int], step: int) -> tuple[int, int, int]:
    count = missing = largest = 0
    for a, b in zip(open_ms, open_ms[1:], strict=False):
        m = (b - a) // step - 1
        if m > 0:
            count += 1
            missing += m
            largest = max(largest, m)
    return count, missing, largest
