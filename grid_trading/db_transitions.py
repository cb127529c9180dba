"""Status transitions enforced by the database itself, generated from gridcore.domain.transitions.

For each table a trigger refuses an UPDATE that changes `status` along an edge the transition table does not have,
and an INSERT with a status that is not an initial one. Services go through grid_trading.services.transitions;
the triggers catch everything else (raw SQL, admin, a bug), on SQLite and PostgreSQL alike.
Used from migrations: `migrations.RunPython(transition_trigger_op(...), reverse)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _allowed_sql(table: Mapping[tuple[str, str], str]) -> str:
    pairs = sorted({(str(a), str(b)) for (a, _), b in table.items()})
    return " OR ".join(f"(OLD.status = '{a}' AND NEW.status = '{b}')" for a, b in pairs) or "FALSE"


def trigger_sql(vendor: str, db_table: str, table: Mapping[tuple[str, str], str],
                initial: Iterable[str]) -> tuple[list[str], list[str]]:
    """(create statements, drop statements) for one table on 'sqlite' or 'postgresql'."""
    name = f"{db_table}_status_fsm"
    init = ", ".join(f"'{s}'" for s in sorted(str(s) for s in initial))
    allowed = _allowed_sql(table)
    message = f"illegal {db_table}.status transition"
    if vendor == "sqlite":
        create = [
            f"CREATE TRIGGER {name}_update BEFORE UPDATE OF status ON {db_table} "
            f"WHEN OLD.status <> NEW.status AND NOT ({allowed}) "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END;",
            f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {db_table} WHEN NEW.status NOT IN ({init}) "
            f"BEGIN SELECT RAISE(ABORT, 'illegal initial {db_table}.status'); END;",
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name}_update;", f"DROP TRIGGER IF EXISTS {name}_insert;"]
    elif vendor == "postgresql":
        create = [
            f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.status NOT IN ({init}) THEN
    RAISE EXCEPTION 'illegal initial {db_table}.status %', NEW.status USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status <> NEW.status AND NOT ({allowed}) THEN
    RAISE EXCEPTION '{message} % -> %', OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;""",
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {db_table} FOR EACH ROW EXECUTE FUNCTION {name}();",
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name} ON {db_table};", f"DROP FUNCTION IF EXISTS {name}();"]
    else:
        raise NotImplementedError(f"status triggers: expected sqlite or postgresql, was {vendor}")
    return create, drop


def transition_trigger_ops(db_table: str, table: Mapping[tuple[str, str], str], initial: Iterable[str]):
    """(forward, reverse) functions for migrations.RunPython."""
    initial = list(initial)

    def forward(apps, schema_editor):
        create, _ = trigger_sql(schema_editor.connection.vendor, db_table, table, initial)
        for sql in create:
            schema_editor.execute(sql, params=None)

    def reverse(apps, schema_editor):
        _, drop = trigger_sql(schema_editor.connection.vendor, db_table, table, initial)
        for sql in drop:
            schema_editor.execute(sql, params=None)

    return forward, reverse
