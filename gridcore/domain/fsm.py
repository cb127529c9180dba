"""One tiny state-machine engine: a table {(state, trigger): next_state} and a lookup that raises."""

from __future__ import annotations

from collections.abc import Mapping

from gridcore.errors import GridError


class InvalidTransition(GridError):
    def __init__(self, entity: str, state: str, trigger: str, allowed: list[str] | None = None):
        self.entity, self.state, self.trigger = entity, state, trigger
        hint = f"; allowed from {state}: {', '.join(allowed)}" if allowed else f"; {state} is final"
        super().__init__(f"{entity}: expected a trigger allowed in state {state}, was {trigger} ({state} -> "
                         f"{trigger}){hint}")


def next_state(table: Mapping[tuple[str, str], str], entity: str, state: str, trigger: str) -> str:
    try:
        return table[(state, trigger)]
    except KeyError:
        allowed = sorted(t for (s, t) in table if s == state)
        raise InvalidTransition(entity, state, trigger, allowed) from None


def states_of(table: Mapping[tuple[str, str], str]) -> set[str]:
    return {s for s, _ in table} | set(table.values())
