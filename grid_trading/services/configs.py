"""Strategy config versions: create (idempotent), look up by ref, derive, import/export, diff."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from django.db import IntegrityError, transaction

from grid_trading.models import GridStrategyConfig
from grid_trading.services.provenance import code_version
from gridcore.errors import ConfigError
from gridcore.params import (
    StrategyParams,
    default_params,
    diff_params,
    dump_toml,
    dump_yaml,
    merge_dicts,
    params_from_dict,
    params_hash,
    params_to_dict,
    parse_toml_dict,
    parse_yaml_dict,
    set_dotted,
)

DEFAULT_NAME = "default"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ConfigFormat = Literal["toml", "yaml"]
_CREATE_ATTEMPTS = 3


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"expected a config name of letters, digits, '_', '.', '-' (at most 64, no '@'), "
                          f"was {name!r}")
    return name


def _latest(name: str) -> GridStrategyConfig | None:
    return GridStrategyConfig.objects.filter(name=name).order_by("-version").first()


@transaction.atomic
def config_create(*, name: str, params: StrategyParams | Mapping[str, Any], note: str = "",
                  parent: GridStrategyConfig | None = None,
                  provenance: Mapping[str, Any] | None = None) -> tuple[GridStrategyConfig, bool]:
    """Store params as the next version of `name`; the latest version is returned instead when its hash matches."""
    _check_name(name)
    p = params if isinstance(params, StrategyParams) else params_from_dict(params)
    digest = params_hash(p)
    for attempt in range(_CREATE_ATTEMPTS):
        latest = _latest(name)
        if latest is not None and latest.config_hash == digest:
            return latest, False
        try:
            with transaction.atomic():  # a savepoint, so a lost race can be retried inside the outer transaction
                cfg = GridStrategyConfig(name=name, version=(latest.version + 1) if latest else 1,
                                         params=params_to_dict(p), config_hash=digest, code_version=code_version(),
                                         note=note, parent=parent, provenance=dict(provenance or {}))
                cfg.save()
                return cfg, True
        except IntegrityError:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'NAME' or 'NAME@latest' -> (NAME, None); 'NAME@3' -> (NAME, 3)."""
    name, sep, version = ref.partition("@")
    if not NAME_RE.match(name) or (sep and not (version == "latest" or (version.isdigit() and int(version) >= 1))):
        raise ConfigError(f"expected a config ref NAME, NAME@VERSION or NAME@latest, was {ref!r}")
    return name, (int(version) if sep and version != "latest" else None)


def config_get(*, ref: str) -> GridStrategyConfig:
    """The version a ref names; the error lists the known names or versions."""
    name, version = parse_ref(ref)
    rows = GridStrategyConfig.objects.filter(name=name)
    cfg = rows.order_by("-version").first() if version is None else rows.filter(version=version).first()
    if cfg is not None:
        return cfg
    versions = list(rows.order_by("version").values_list("version", flat=True))
    if versions:
        raise ConfigError(f"expected an existing version of config {name!r}, was {ref!r}: known versions "
                          f"{', '.join(map(str, versions))}")
    names = sorted(set(GridStrategyConfig.objects.values_list("name", flat=True)))
    raise ConfigError(f"expected a known config name, was {ref!r}: known names {', '.join(names) or '(none yet)'}")


def config_default() -> GridStrategyConfig:
    """The "default" version holding default_params(): "default"@1 on a fresh database.

    If the code's defaults change, a new "default" version is created for them, so every run keeps pointing at the
    params it really used.
    """
    p = default_params()
    digest = params_hash(p)
    cfg = GridStrategyConfig.objects.filter(name=DEFAULT_NAME, config_hash=digest).order_by("-version").first()
    if cfg is not None:
        return cfg
    return config_create(name=DEFAULT_NAME, params=p, note="code defaults (gridcore.params.default_params)",
                         parent=_latest(DEFAULT_NAME))[0]


def config_list(*, name: str | None = None) -> list[GridStrategyConfig]:
    """All versions (of one name when given), by name and version."""
    rows = GridStrategyConfig.objects.all()
    if name is not None:
        rows = rows.filter(name=name)
    return list(rows.order_by("name", "version"))


def config_params(cfg: GridStrategyConfig) -> StrategyParams:
    """The validated StrategyParams of a stored version."""
    return params_from_dict(cfg.params)


def read_params_file(path: Path) -> dict[str, Any]:
    """The raw (partial) params dict of a .toml, .yaml or .yml file."""
    fmt = format_for(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"expected a readable params file, was {path}: {e.strerror}") from None
    try:
        return parse_toml_dict(text) if fmt == "toml" else parse_yaml_dict(text)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def format_for(path: Path) -> ConfigFormat:
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ConfigError(f"expected a .toml, .yaml or .yml file, was {path}")


def config_derive(*, name: str, base: GridStrategyConfig | None = None, file: Path | None = None,
                  sets: Sequence[tuple[str, Any]] = (), note: str = "") -> tuple[GridStrategyConfig, bool]:
    """A new version of `name` = base params (default: the latest of `name`, else the defaults) + file + sets.

    The file's tables merge into the base key by key, then each (dotted key, value) of `sets` is applied;
    the result is validated as a whole, so every problem is reported at once. `parent` is the base version.
    """
    _check_name(name)
    if base is None:
        base = _latest(name)
    data = params_to_dict(config_params(base)) if base is not None else params_to_dict(default_params())
    if file is not None:
        data = merge_dicts(data, read_params_file(file))
    for key, value in sets:
        set_dotted(data, key, value)
    return config_create(name=name, params=params_from_dict(data), note=note, parent=base)


def config_import(*, path: Path, name: str | None = None, note: str = "") -> tuple[GridStrategyConfig, bool]:
    """Store a params file as a version of `name` (default: the file's stem); missing keys take the defaults."""
    name = name or Path(path).stem
    return config_create(name=_check_name(name), params=params_from_dict(read_params_file(path)),
                         note=note or f"imported from {Path(path).name}")


def config_export(cfg: GridStrategyConfig, *, fmt: ConfigFormat = "toml") -> str:
    """The params as TOML or YAML, headed by a comment naming the version and its hash."""
    p = config_params(cfg)
    header = f"# autogrid strategy config {cfg.ref}  sha256 {cfg.config_hash}  code {cfg.code_version}\n"
    return header + (dump_toml(p) if fmt == "toml" else dump_yaml(p))


def config_diff(a: GridStrategyConfig, b: GridStrategyConfig) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every parameter that differs."""
    return diff_params(config_params(a), config_params(b))


def config_resolve(ref: str | None) -> GridStrategyConfig:
    """What a command's --config means: the given NAME[@VERSION], or the default config when none is given."""
    return config_get(ref=ref) if ref else config_default()
