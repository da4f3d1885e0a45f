"""Definitions: what is accepted, and how a bad one is refused (the place and the fix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from surmesure.domain.segments import SegmentDefinition, TraitNode, walk
from surmesure.errors import InvalidInput
from surmesure.segment.definitions import check_references, error_path, load_file, parse

EXAMPLE = """
name: lyon_loyal
description: Loyal customers near the Lyon store
where:
  all:
    - trait: {name: city, op: eq, value: Lyon, min_reliability: 0.7}
    - metric: {name: rfm_segment, op: in, value: [Champions, Loyal]}
    - event: {type: track, name: Product Viewed, within_days: 30, min_count: 2}
    - purchase: {category: shoes, within_days: 90, min_amount: 50}
    - not: {consent: {purpose: marketing, channel: email, granted: false}}
    - near: {store: lyon, radius_km: 20}
    - near: {lat: 45.76, lon: 4.83, radius_km: 10}
    - segment: other_segment
    - bucket: {salt: test-1, from: 0.0, to: 0.1}
"""


def refusal(document: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(document)
    return caught.value


def with_where(where: Any) -> dict[str, Any]:
    return {"name": "s", "where": where}


def test_the_documented_example_parses_and_round_trips() -> None:
    definition = parse(yaml.safe_load(EXAMPLE))
    assert [path for path, _ in walk(definition.where)][:2] == [
        "where.all[0].trait",
        "where.all[1].metric",
    ]
    assert len(list(walk(definition.where))) == 9
    assert parse(definition.document()) == definition
    assert definition.document()["where"]["all"][8]["bucket"] == {
        "salt": "test-1",
        "from": 0.0,
        "to": 0.1,
    }


def test_json_schema_names_every_condition() -> None:
    schema_text = str(SegmentDefinition.model_json_schema())
    for tag in ("trait", "metric", "event", "purchase", "consent", "near", "bucket", "not"):
        assert f"'{tag}'" in schema_text


def test_unknown_metric_is_refused_at_its_place() -> None:
    error = refusal(
        with_where(
            {
                "all": [
                    {"trait": {"name": "city", "op": "exists"}},
                    {"trait": {"name": "city", "op": "exists"}},
                    {"metric": {"name": "rfm_segmen", "op": "eq", "value": "Loyal"}},
                ]
            }
        )
    )
    assert error.field == "where.all[2].metric.name"
    assert "rfm_segmen" in error.message
    assert error.hint is not None and "rfm_segment" in error.hint


@pytest.mark.parametrize(
    ("where", "field", "words"),
    [
        ({"trait": {"name": "age", "op": "gt", "value": "abc"}}, "where.trait", "gt"),
        ({"metric": {"name": "r_score", "op": "eq", "value": "high"}}, "where.metric", "number"),
        ({"metric": {"name": "rfm_segment", "op": "gt", "value": "A"}}, "where.metric", "gt"),
        ({"trait": {"name": "city", "op": "contains", "value": 3}}, "where.trait", "contains"),
        ({"trait": {"name": "city", "op": "in", "value": ["a", 1]}}, "where.trait", "one kind"),
        ({"trait": {"name": "city", "op": "exists", "value": 1}}, "where.trait", "no value"),
        ({"all": []}, "where.all", "at least 1"),
        ({"not": {"any": []}}, "where.not.any", "at least 1"),
        ({"all": [{"colour": "red"}]}, "where.all[0]", "one key"),
        ({"event": {"name": "x", "min_count": 3, "max_count": 1}}, "where.event", "max_count"),
        ({"bucket": {"salt": "s", "from": 0.5, "to": 0.2}}, "where.bucket", "from"),
        ({"near": {"radius_km": 3}}, "where.near", "store or a point"),
        ({"near": {"store": "x", "radius_km": 0}}, "where.near.radius_km", "greater than 0"),
        ({"purchase": {"product": "a", "category": "b"}}, "where.purchase", "both"),
        ({"trait": {"name": "city", "op": "eq", "value": "x", "typo": 1}}, "where.trait.typo", ""),
    ],
)
def test_bad_conditions_name_place_and_fix(where: Any, field: str, words: str) -> None:
    error = refusal(with_where(where))
    assert error.field == field
    assert words in error.message
    assert error.hint


def test_bad_name_and_non_mapping() -> None:
    assert refusal({"name": "Lyon Loyal", "where": {"segment": "x"}}).field == "name"
    with pytest.raises(InvalidInput):
        parse(["not", "a", "mapping"])


def test_error_path_collapses_the_tag() -> None:
    loc = ("where", "all", "all", 2, "metric", "metric", "name")
    assert error_path(loc) == "where.all[2].metric.name"


def definition(name: str, *refs: str) -> SegmentDefinition:
    where: Any = (
        {"all": [{"segment": r} for r in refs]}
        if refs
        else {"bucket": {"salt": "a", "from": 0, "to": 1}}
    )
    return SegmentDefinition.model_validate({"name": name, "where": where})


def test_unknown_reference_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_references(definition("a", "b"), {})
    assert caught.value.field == "where.all[0].segment"
    assert "'b'" in caught.value.message


def test_cycles_are_refused_with_the_chain() -> None:
    catalog = {"b": definition("b", "c"), "c": definition("c", "a"), "a": definition("a")}
    with pytest.raises(InvalidInput) as caught:
        check_references(definition("a", "b"), catalog)
    assert "a -> b -> c -> a" in caught.value.message
    with pytest.raises(InvalidInput):
        check_references(definition("a", "a"), {})
    check_references(definition("d", "b", "c"), catalog)  # a diamond is no cycle


def test_files_in_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(EXAMPLE)
    json_file = tmp_path / "s.json"
    json_file.write_text('{"name": "t", "where": {"trait": {"name": "city", "op": "exists"}}}')
    assert load_file(yaml_file).name == "lyon_loyal"
    assert isinstance(load_file(json_file).where, TraitNode)
    broken = tmp_path / "b.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_file(broken)
    with pytest.raises(InvalidInput, match="Cannot read"):
        load_file(tmp_path / "missing.yaml")


def test_every_derived_metric_can_be_tested_by_a_segment() -> None:
    from surmesure.domain.segments import METRICS
    from surmesure.store import schema

    bookkeeping = {"person_id", "computed_on", "computed_at", "as_of", "horizon_days",
                   "discount_rate", "window_days", "preferred_store_basis"}  # fmt: skip
    columns = {c.name for c in schema.derived_metrics.c} - bookkeeping
    assert set(METRICS) == columns
