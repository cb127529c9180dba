"""`manage.py config ...`: versioned, immutable strategy configs end to end (real test database, no mocks)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from grid_trading.models import GridStrategyConfig
from grid_trading.models.config import ImmutableConfigError
from grid_trading.services.configs import config_create, config_default, config_get, config_params
from grid_trading.services.provenance import code_version
from gridcore.params import default_params, load_toml, load_yaml, params_hash, params_to_dict

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("config", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_create_is_version_1_and_idempotent():
    first = run_json("create", "btc")
    assert first == {"name": "btc", "version": 1, "config_hash": params_hash(default_params()), "created": True}
    again = run_json("create", "btc")
    assert again == {**first, "created": False}
    assert GridStrategyConfig.objects.filter(name="btc").count() == 1
    assert "unchanged: btc@1" in run("create", "btc")


def test_set_creates_the_next_version_with_its_parent_and_diff_shows_the_change():
    run_json("create", "btc")
    second = run_json("create", "btc", "--set", "risk.max_drawdown=0.08", "--set", "grid.grid_type=arithmetic",
                      "--note", "tighter")
    assert second["version"] == 2 and second["created"] is True
    v1, v2 = config_get(ref="btc@1"), config_get(ref="btc@latest")
    assert v2.version == 2 and v2.parent == v1 and v2.note == "tighter"
    assert str(config_params(v2).risk.max_drawdown) == "0.08" and config_params(v2).grid.grid_type == "arithmetic"
    assert v2.params["risk"]["max_drawdown"] == "0.08"

    diff = run_json("diff", "btc@1", "btc@2")
    assert diff == {"a": "btc@1", "b": "btc@2", "changes": [
        {"key": "grid.grid_type", "a": "geometric", "b": "arithmetic"},
        {"key": "risk.max_drawdown", "a": "0.1", "b": "0.08"}]}
    assert "risk.max_drawdown: 0.1 -> 0.08" in run("diff", "btc@1", "btc")
    assert run_json("diff", "btc@2", "btc@latest")["changes"] == []

    third = run_json("create", "btc", "--set", "risk.max_drawdown=0.08", "--set", "grid.grid_type=arithmetic")
    assert (third["version"], third["created"]) == (2, False)  # equal to the latest: nothing new


def test_create_from_another_ref_and_from_a_partial_file(tmp_path: Path):
    run_json("create", "base", "--set", "account.leverage=5")
    (tmp_path / "partial.yaml").write_text("costs:\n  slippage: '0.0008'\n  stress_slippage: '0.002'\n")
    out = run_json("create", "eth", "--from", "base@1", "--file", str(tmp_path / "partial.yaml"),
                   "--set", "vsa.lookback=30")
    p = config_params(config_get(ref="eth"))
    assert out["version"] == 1 and config_get(ref="eth").parent == config_get(ref="base@1")
    assert (p.account.leverage, str(p.costs.slippage), p.vsa.lookback) == (5, "0.0008", 30)


def test_export_toml_then_import_under_another_name_gives_the_same_hash(tmp_path: Path):
    run_json("create", "btc", "--set", "fills.headline.path=adaptive", "--set", "costs.maker_fee=0.00018")
    path = tmp_path / "btc.toml"
    written = run_json("export", "btc@1", "--output", str(path))
    assert written["format"] == "toml" and path.exists()
    assert load_toml(path.read_text()) == config_params(config_get(ref="btc@1"))
    imported = run_json("import", str(path), "--name", "btc-copy")
    assert imported["created"] is True and imported["version"] == 1
    assert imported["config_hash"] == config_get(ref="btc@1").config_hash
    assert config_get(ref="btc-copy").params == config_get(ref="btc@1").params


def test_export_yaml_to_stdout_and_import_by_file_name(tmp_path: Path):
    run_json("create", "btc", "--set", "box.gap_pct=0.004")
    text = run("export", "btc", "--format", "yaml")
    assert text.startswith("# autogrid strategy config btc@1")
    assert load_yaml(text) == config_params(config_get(ref="btc"))
    (tmp_path / "from_yaml.yml").write_text(text)
    imported = run_json("import", str(tmp_path / "from_yaml.yml"))
    assert imported["name"] == "from_yaml" and imported["config_hash"] == config_get(ref="btc").config_hash


def test_show_json_fields():
    run_json("create", "btc", "--note", "first")
    shown = run_json("show", "btc@1")
    assert set(shown) == {"name", "version", "config_hash", "code_version", "created_at", "params"}
    assert (shown["name"], shown["version"], shown["config_hash"]) == ("btc", 1, params_hash(default_params()))
    assert shown["code_version"] == code_version() and shown["params"] == params_to_dict(default_params())
    assert shown["created_at"].startswith("20")
    assert "[risk]" in run("show", "btc") and "# first" in run("show", "btc")


def test_list_json():
    assert run_json("list") == []
    run_json("create", "b")
    run_json("create", "a", "--note", "hello")
    run_json("create", "a", "--set", "ma.length=30")
    rows = run_json("list")
    assert [(r["name"], r["version"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1)]
    assert set(rows[0]) == {"name", "version", "config_hash", "code_version", "created_at", "note"}
    assert rows[0]["note"] == "hello" and rows[0]["config_hash"] == rows[2]["config_hash"]
    assert rows[1]["config_hash"] != rows[0]["config_hash"]


def test_a_version_cannot_be_modified_or_deleted():
    cfg, _ = config_create(name="btc", params=default_params())
    before = GridStrategyConfig.objects.values().get(pk=cfg.pk)
    cfg.note = "changed"
    with pytest.raises(ImmutableConfigError, match="immutable"):
        cfg.save()
    with pytest.raises(ImmutableConfigError):
        cfg.delete()
    with pytest.raises(ImmutableConfigError):
        GridStrategyConfig.objects.filter(pk=cfg.pk).update(note="changed")
    with pytest.raises(ImmutableConfigError):
        GridStrategyConfig.objects.filter(pk=cfg.pk).delete()
    assert GridStrategyConfig.objects.values().get(pk=cfg.pk) == before


def test_the_database_enforces_unique_name_and_version():
    cfg, _ = config_create(name="btc", params=default_params())
    duplicate = GridStrategyConfig(name="btc", version=1, params=cfg.params, config_hash=cfg.config_hash,
                                   code_version="test")
    with pytest.raises(IntegrityError), transaction.atomic():
        GridStrategyConfig.objects.bulk_create([duplicate])  # bypasses the services: the constraint must hold
    with pytest.raises(IntegrityError), transaction.atomic():
        GridStrategyConfig.objects.bulk_create([GridStrategyConfig(name="x", version=0, params=cfg.params,
                                                                   config_hash=cfg.config_hash, code_version="t")])
    assert GridStrategyConfig.objects.count() == 1


def test_bad_set_key_is_a_command_error_naming_it():
    with pytest.raises(CommandError) as info:
        run("create", "btc", "--set", "risk.max_drawdwn=0.08", "--set", "vsa.close_low=0.9",
            "--set", "grid.grid_type=hexagonal")
    message = str(info.value)
    assert "risk.max_drawdwn" in message and "did you mean risk.max_drawdown?" in message
    assert "vsa.close_low" in message and "grid.grid_type" in message  # every problem, at once
    assert not GridStrategyConfig.objects.exists()
    with pytest.raises(CommandError, match="expected --set dotted.key=value"):
        run("create", "btc", "--set", "risk.max_drawdown")


def test_unknown_refs_name_the_known_names_and_versions():
    run_json("create", "btc")
    with pytest.raises(CommandError, match=r"'eth'.*known names btc"):
        run("show", "eth")
    with pytest.raises(CommandError, match=r"'btc@7'.*known versions 1"):
        run("show", "btc@7")
    with pytest.raises(CommandError, match="expected a config ref"):
        run("show", "btc@x")


def test_config_default_is_default_at_1_and_stable():
    cfg = config_default()
    assert (cfg.name, cfg.version, cfg.config_hash) == ("default", 1, params_hash(default_params()))
    assert config_default().pk == cfg.pk
    assert config_params(cfg) == default_params()


def test_code_version_is_a_commit_or_unknown():
    v = code_version()
    assert v == "unknown" or (len(v.removesuffix("+dirty")) == 40 and all(
        c in "0123456789abcdef" for c in v.removesuffix("+dirty")))
