"""What the terminal shows is what was written: brackets in help, errors and stored values are
printed as text, never read as Rich markup; each figure of ``status`` has one label."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_helpers import write_file

from conftest import invoke


def test_segment_help_keeps_the_window_in_brackets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke(monkeypatch, url, "segment", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Windows are [now - within_days, now], both ends included" in text


def test_an_error_shows_the_pattern_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    definition = tmp_path / "bad.yaml"
    definition.write_text("name: Bad Name\nwhere: {trait: {name: city, op: eq, value: Lyon}}\n")
    monkeypatch.setenv("COLUMNS", "300")
    result = invoke(monkeypatch, url, "segment", "validate", str(definition))
    assert result.exit_code == 2
    assert "'^[a-z][a-z0-9_]{0,62}$'" in result.output


def test_quarantine_shows_refused_values_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    customers = write_file(
        tmp_path,
        "customers",
        "csv",
        [
            {"customer_id": "C1", "gender": "[female]"},
            {"customer_id": "C2", "email": "[bold]@example"},
        ],
    )
    monkeypatch.setenv("COLUMNS", "300")
    imported = invoke(monkeypatch, url, "import", "customers", str(customers))
    assert imported.exit_code == 0, imported.output
    listed = invoke(monkeypatch, url, "quarantine", "list")
    assert listed.exit_code == 0, listed.output
    assert "[female]" in listed.output and "[bold]@example" in listed.output


def test_status_names_people_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    result = invoke(monkeypatch, url, "status")
    assert result.exit_code == 0, result.output
    labels = [line.strip("│ ").split("│")[0].strip() for line in result.output.splitlines()]
    assert labels.count("people") == 1
