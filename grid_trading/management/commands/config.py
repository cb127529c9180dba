"""`config list | show | create | diff | export | import`: versioned strategy parameter sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grid_trading.management.commands._base import GridCommand
from grid_trading.models import GridStrategyConfig
from grid_trading.services import configs as svc
from gridcore.errors import ConfigError
from gridcore.params import dump_toml, to_jsonable


def parse_set(text: str) -> tuple[str, Any]:
    """'risk.max_drawdown=0.08' -> ('risk.max_drawdown', 0.08); the value is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected --set dotted.key=value, was {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _summary(cfg: GridStrategyConfig) -> dict[str, Any]:
    return {"name": cfg.name, "version": cfg.version, "config_hash": cfg.config_hash,
            "code_version": cfg.code_version, "created_at": cfg.created_at.isoformat(), "note": cfg.note}


class Command(GridCommand):
    help = "List, show, create, diff, export and import versioned strategy configs."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="every stored version")
        show = sub.add_parser("show", help="one version and its params")
        show.add_argument("ref", help="NAME, NAME@VERSION or NAME@latest")
        create = sub.add_parser("create", help="a new version (idempotent when nothing changed)")
        create.add_argument("name")
        create.add_argument("--from", dest="from_ref", help="base version (default: the latest of NAME, else defaults)")
        create.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                            help="override a dotted key; the value is JSON when it parses, else a string")
        create.add_argument("--file", type=Path, help="a .toml/.yaml params file merged onto the base")
        create.add_argument("--note", default="")
        diff = sub.add_parser("diff", help="parameters that differ between two versions")
        diff.add_argument("ref_a")
        diff.add_argument("ref_b")
        export = sub.add_parser("export", help="write a version's params as TOML or YAML")
        export.add_argument("ref")
        export.add_argument("--format", choices=["toml", "yaml"], help="default: from --output, else toml")
        export.add_argument("--output", type=Path, help="file to write (default: stdout)")
        imp = sub.add_parser("import", help="store a .toml/.yaml params file as a version")
        imp.add_argument("file", type=Path)
        imp.add_argument("--name", help="config name (default: the file name without extension)")
        imp.add_argument("--note", default="")
        for p in (ls, show, create, diff, export, imp):
            super().add_arguments(p)

    def handle(self, *args, **o):
        return getattr(self, "handle_" + o["action"])(o)

    def handle_list(self, o):
        rows = [_summary(c) for c in svc.config_list()]
        text = "\n".join(f"{r['name']}@{r['version']:<4} {r['config_hash'][:12]}  {r['code_version'][:20]:<20} "
                         f"{r['created_at'][:19]}  {r['note']}" for r in rows) or "no configs yet"
        self.emit(o, rows, text=text)

    def handle_show(self, o):
        cfg = svc.config_get(ref=o["ref"])
        payload = {k: v for k, v in _summary(cfg).items() if k != "note"} | {"params": cfg.params}
        text = (f"# {cfg.ref}  sha256 {cfg.config_hash}\n# code {cfg.code_version}  created {payload['created_at']}"
                f"{'  parent ' + cfg.parent.ref if cfg.parent else ''}\n"
                f"{'# ' + cfg.note + chr(10) if cfg.note else ''}{dump_toml(svc.config_params(cfg))}")
        self.emit(o, payload, text=text)

    def handle_create(self, o):
        sets = [parse_set(s) for s in o["sets"]]
        base = svc.config_get(ref=o["from_ref"]) if o["from_ref"] else None
        cfg, created = svc.config_derive(name=o["name"], base=base, file=o["file"], sets=sets, note=o["note"])
        self._emit_stored(o, cfg, created)

    def handle_import(self, o):
        cfg, created = svc.config_import(path=o["file"], name=o["name"], note=o["note"])
        self._emit_stored(o, cfg, created)

    def _emit_stored(self, o, cfg: GridStrategyConfig, created: bool) -> None:
        payload = {"name": cfg.name, "version": cfg.version, "config_hash": cfg.config_hash, "created": created}
        parent = f" (from {cfg.parent.ref})" if cfg.parent else ""
        text = (f"created {cfg.ref}{parent} sha256 {cfg.config_hash}" if created
                else f"unchanged: {cfg.ref} already holds these params (sha256 {cfg.config_hash})")
        self.emit(o, payload, text=text)

    def handle_diff(self, o):
        a, b = svc.config_get(ref=o["ref_a"]), svc.config_get(ref=o["ref_b"])
        changes = [{"key": k, "a": to_jsonable(va), "b": to_jsonable(vb)} for k, va, vb in svc.config_diff(a, b)]
        text = "\n".join(f"{c['key']}: {c['a']} -> {c['b']}" for c in changes) or f"no differences ({a.ref}, {b.ref})"
        self.emit(o, {"a": a.ref, "b": b.ref, "changes": changes}, text=text)

    def handle_export(self, o):
        cfg = svc.config_get(ref=o["ref"])
        fmt = o["format"] or (svc.format_for(o["output"]) if o["output"] else "toml")
        text = svc.config_export(cfg, fmt=fmt)
        if o["output"] is None:
            if o["json"]:
                self.emit(o, {"name": cfg.name, "version": cfg.version, "config_hash": cfg.config_hash,
                              "format": fmt, "content": text})
            else:
                self.stdout.write(text, ending="")
            return
        o["output"].write_text(text, encoding="utf-8")
        self.emit(o, {"name": cfg.name, "version": cfg.version, "config_hash": cfg.config_hash,
                      "path": str(o["output"]), "format": fmt}, text=f"wrote {cfg.ref} to {o['output']} ({fmt})")
