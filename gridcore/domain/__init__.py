"""Domain types shared by every stage: enums, state machines, errors of state."""
