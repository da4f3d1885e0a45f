"""The mappings the demo ships: the call centre's sets its source, and the value maps replay
the demo's main refusals (``female``, ``satisfaction``, ``forwarded``, ``newsletter``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import copy_demo, invoke_json
from surmesure.collect import quarantine
from surmesure.store import open_store

FIXES = {
    "customers": ("gender", "female"),
    "surveys": ("metric", "satisfaction"),
    "email": ("kind", "forwarded"),
    "consents": ("purpose", "newsletter"),
}


@pytest.fixture(scope="module")
def demo(
    demo_world: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """A copy of the session's demo world, for this module's replays to change."""
    folder = tmp_path_factory.mktemp("demo")
    return copy_demo(demo_world[0], folder), folder / "world"


def open_refusals(url: str) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        return quarantine.summary(store, status="open", limit=100_000)["recent"]
    finally:
        store.dispose()


def test_value_maps_replay_the_main_refusals(
    demo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, world = demo
    before = open_refusals(url)
    for kind, (field, value) in FIXES.items():
        held = [r for r in before if (r["kind"], r["field"], r["value"]) == (kind, field, value)]
        assert held, f"the demo has no refused {kind}.{field} = {value}"
        fix = world / "mappings" / f"fix_{kind}.yaml"
        done = invoke_json(
            monkeypatch, url, "quarantine", "replay", "--kind", kind, "--mapping", str(fix)
        )
        assert done["replayed"] >= len(held)
    after = open_refusals(url)
    assert not [r for r in after if r["kind"] in FIXES and r["value"] == FIXES[r["kind"]][1]]
    assert len(after) < len(before)


def test_the_call_centre_mapping_reads_its_file_as_the_demo_did(
    demo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same source, same time zone: every record the demo stored is recognised, none is new."""
    url, world = demo
    path = world / "customers_call_centre.csv"
    mapping = world / "mappings" / "call_centre.yaml"
    args = ("import", "customers", str(path), "--mapping", str(mapping))
    result = invoke_json(monkeypatch, url, *args)
    assert result["rows_read"] > 0 and result["rows_accepted"] == 0
    assert result["rows_duplicate"] + result["rows_quarantined"] == result["rows_read"]
    assert result["source"] == "call_centre"
