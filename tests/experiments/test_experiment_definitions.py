"""Definitions: read from YAML or JSON, refused with the faulty field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from surmesure.errors import InvalidInput
from surmesure.experiments.definitions import load_file, parse
from world import definition

GOOD = """
name: welcome_offer
variants:
  - {name: control, weight: 0.2}
  - {name: offer, weight: 0.5}
control: control
holdout: 0.05
primary: conversion
guardrails: [unsubscribe, revenue]
attribution_days: 14
"""


def test_yaml_and_json_files_give_the_same_definition(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(GOOD)
    d = load_file(tmp_path / "e.yaml")
    assert d.metrics == ["conversion", "unsubscribe", "revenue"]
    assert d.control_variant == "control" and d.assignment_salt == "welcome_offer"
    import orjson

    (tmp_path / "e.json").write_bytes(orjson.dumps(d.document()))
    assert load_file(tmp_path / "e.json") == d


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"primary": "clicks"}, "primary"),
        ({"attribution_days": 0}, "attribution_days"),
        ({"holdout": 1.5}, "holdout"),
        (
            {"variants": [{"name": "a", "weight": 0.6}, {"name": "b", "weight": 0.1}]},
            "variants[0].weight",
        ),
        ({"guardrails": ["conversion"]}, "guardrails"),
        (
            {"variants": [{"name": "A", "weight": 0.1}, {"name": "b", "weight": 0.1}]},
            "variants[0].name",
        ),
        (
            {"variants": [{"name": "a", "weight": -0.1}, {"name": "b", "weight": 0.1}]},
            "variants[0].weight",
        ),
        ({"control": "nobody"}, "control"),
        ({"colour": "red"}, "colour"),
        ({"layer": {"name": "home", "start": 0.5, "end": 0.2}}, "layer.end"),
    ],
)
def test_bad_definitions_name_the_field(change: dict[str, Any], field: str) -> None:
    doc = definition().document() | {"control": None} | change
    with pytest.raises(InvalidInput) as err:
        parse(doc)
    assert err.value.field == field
    assert err.value.hint


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InvalidInput) as err:
        load_file(tmp_path / "bad.yaml")
    assert err.value.field == "FILE"
