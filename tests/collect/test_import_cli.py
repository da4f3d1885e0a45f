"""``surmesure import`` and ``surmesure quarantine`` as a user runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from import_helpers import write_file
from typer.testing import CliRunner

from surmesure.cli.main import app
from surmesure.config import get_settings


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", f"duckdb:///{tmp_path / 'cli.duckdb'}")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _json(output: str) -> dict[str, object]:
    value = orjson.loads(output)
    assert isinstance(value, dict)
    return value


def test_import_list_show_replay(runner: CliRunner, tmp_path: Path) -> None:
    path = write_file(
        tmp_path,
        "stock",
        "csv",
        [
            {"sku": "P1", "store_id": "online", "qty": "5", "count": "5"},
            {"sku": "P2", "store_id": "S1", "qty": "-2", "count": "2"},
        ],
    )
    mapping = tmp_path / "stock.yaml"
    mapping.write_text("columns: {product_code: sku, quantity: qty}\n")
    result = runner.invoke(app, ["import", "stock", str(path), "--mapping", str(mapping), "--json"])
    assert result.exit_code == 0, result.output
    report = _json(result.stdout)
    assert set(report) >= {
        "run_id", "kind", "path", "rows_read", "rows_accepted", "rows_quarantined",
        "rows_duplicate", "new_people", "merges", "quarantined_by_reason", "seconds",
    }  # fmt: skip
    assert (report["rows_accepted"], report["rows_quarantined"]) == (1, 1)
    assert report["quarantined_by_reason"] == {
        "quantity: Input should be greater than or equal to 0": 1
    }

    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    summary = _json(listed.stdout)
    assert summary["total"] == 1
    recent = summary["recent"]
    assert isinstance(recent, list)
    qid = recent[0]["quarantine_id"]

    shown = runner.invoke(app, ["quarantine", "show", str(qid), "--json"])
    assert shown.exit_code == 0, shown.output
    record = _json(shown.stdout)
    assert record["payload"] == {"sku": "P2", "store_id": "S1", "qty": "-2", "count": "2"}
    assert (record["field"], record["value"], record["location"]) == ("quantity", "-2", "row 2")

    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("columns: {product_code: sku, quantity: count}\n")
    # a reason no record has: nothing considered
    other = ["quarantine", "replay", "--kind", "stock", "--reason", "another", "--json"]
    none = runner.invoke(app, [*other, "--mapping", str(fixed)])
    assert none.exit_code == 0, none.output
    assert _json(none.stdout)["considered"] == 0
    reason = "quantity: Input should be greater than or equal to 0"
    replayed = runner.invoke(
        app,
        ["quarantine", "replay", "--kind", "stock", "--reason", reason, "--mapping", str(fixed),
         "--json"],
    )  # fmt: skip
    assert replayed.exit_code == 0, replayed.output
    assert _json(replayed.stdout)["replayed"] == 1

    table = runner.invoke(app, ["quarantine", "list", "--status", "all"])
    assert table.exit_code == 0 and "replayed" in table.stdout


def test_import_prints_counts_by_reason(runner: CliRunner, tmp_path: Path) -> None:
    path = write_file(
        tmp_path,
        "stores",
        "csv",
        [{"store_id": "S1", "latitude": "45.7"}, {"store_id": "S2", "latitude": "145"}],
    )
    result = runner.invoke(app, ["import", "stores", str(path)])
    assert result.exit_code == 0, result.output
    assert "quarantined by reason" in result.stdout
    assert "latitude: Input should be less than or equal to 90" in result.stdout


def test_user_errors_are_one_line_with_a_fix(runner: CliRunner, tmp_path: Path) -> None:
    path = write_file(tmp_path, "stores", "csv", [{"name": "Lyon"}])
    result = runner.invoke(app, ["import", "stores", str(path)])
    assert result.exit_code == 2
    assert "Required field 'store_id'" in result.stderr
    assert "fix:" in result.stderr and "Traceback" not in result.output
    missing = runner.invoke(app, ["quarantine", "show", "999", "--json"])
    assert missing.exit_code == 2 and "no quarantined record 999" in missing.stderr
