"""Bad input goes to the quarantine with its reason; nothing is dropped; replay after a fix."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from import_helpers import count, quarantined, rows, write_file

from surmesure.collect import quarantine
from surmesure.collect.importer import import_file
from surmesure.collect.mapping import MappingError
from surmesure.collect.replay import replay
from surmesure.store import Store

GOOD_LINE = {
    "order_id": "A1",
    "ordered_at": "2024-03-01 10:00:00",
    "product_code": "P1",
    "quantity": "2",
    "unit_price": "4.5",
}


def _line(**changes: Any) -> dict[str, Any]:
    return {**GOOD_LINE, **changes}


BAD_ORDER_LINES = [
    (_line(quantity="two"), "quantity", "two", "quantity: Input should be a valid integer"),
    (_line(quantity="1.5"), "quantity", "1.5", "quantity: Input should be a valid integer"),
    (_line(quantity="99999999999"), "quantity", "99999999999", "quantity: Input should be"),
    (_line(unit_price="4,5"), "unit_price", "4,5", "unit_price: Input should be a valid number"),
    (_line(ordered_at="01/03/2024"), "ordered_at", "01/03/2024", "ordered_at: Input should be"),
    (_line(ordered_at="2024-02-30 10:00:00"), "ordered_at", "2024-02-30 10:00:00", "ordered_at"),
    (_line(ordered_at=None), "ordered_at", None, "ordered_at: Field required"),
    (_line(product_code="X" * 65), "product_code", "X" * 65, "at most 64 characters"),
    (_line(currency="EURO"), "currency", "EURO", "currency: String should have at most 3"),
    (_line(is_return="maybe"), "is_return", "maybe", "is_return: Input should be a valid boolean"),
    (_line(email="not-an-email"), "email", "not-an-email", "email: not an e-mail address"),
    (_line(phone="12"), "phone", "12", "phone: not a valid phone number"),
]


@pytest.mark.parametrize(
    ("record", "field", "value", "reason"),
    BAD_ORDER_LINES,
    ids=[f"{case[1]}-{i}" for i, case in enumerate(BAD_ORDER_LINES)],
)
def test_each_bad_value_is_quarantined_with_its_reason(
    duckdb_store: Store,
    tmp_path: Path,
    record: dict[str, Any],
    field: str,
    value: str | None,
    reason: str,
) -> None:
    path = write_file(tmp_path, "lines", "csv", [_line(order_id="OK"), record])
    result = import_file(duckdb_store, "orders", path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (2, 1, 1)
    held = quarantined(duckdb_store)
    assert len(held) == 1
    entry = held[0]
    assert (entry["field"], entry["value"], entry["location"]) == (field, value, "row 2")
    assert entry["reason"].startswith(reason) or reason in entry["reason"]
    assert (entry["origin"], entry["kind"], entry["status"]) == ("import", "orders", "open")
    assert entry["run_id"] == result.run_id
    assert entry["source_name"] == str(path.resolve())
    payload = entry["payload"]
    payload = orjson.loads(payload) if isinstance(payload, str) else payload
    assert {k: v for k, v in payload.items() if not k.startswith("_")} == {
        k: v for k, v in record.items() if v is not None
    } | {k: None for k, v in record.items() if v is None}
    assert result.quarantined_by_reason == {entry["reason"]: 1}


def test_survey_scores_are_checked_against_their_metric(store: Store, tmp_path: Path) -> None:
    answers = [
        {"metric": "nps", "score": 10, "answered_at": "2024-01-01"},
        {"metric": "csat", "score": 6, "answered_at": "2024-01-01"},
        {"metric": "ces", "score": 0, "answered_at": "2024-01-01"},
        {"metric": "ces", "score": 7, "answered_at": "2024-01-01"},
        {"metric": "stars", "score": 3, "answered_at": "2024-01-01"},
    ]
    result = import_file(store, "surveys", write_file(tmp_path, "s", "jsonl", answers))
    assert (result.rows_accepted, result.rows_quarantined) == (2, 3)
    assert result.quarantined_by_reason == {
        "score: a CSAT score should be between 1 and 5": 1,
        "score: a CES score should be between 1 and 7": 1,
        "metric: Input should be 'nps', 'csat' or 'ces'": 1,
    }
    assert count(store, "survey_answers") == 2


def test_unreadable_rows_are_quarantined_not_dropped(store: Store, tmp_path: Path) -> None:
    csv_path = tmp_path / "ragged.csv.gz"
    csv_path.write_bytes(
        gzip.compress(b'store_id,name\nS1,Lyon\nS2,Paris,extra\nS3,"Multi\nline"\nS4\nS5,Nice\n')
    )
    result = import_file(store, "stores", csv_path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (5, 3, 2)
    held = rows(store, "SELECT location, reason FROM quarantine ORDER BY location")
    assert held == [
        {"location": "row 2", "reason": "row has 3 cells, the header has 2"},
        {"location": "row 4", "reason": "row has 1 cells, the header has 2"},
    ]
    assert rows(store, "SELECT name FROM stores WHERE store_id = 'S3'") == [{"name": "Multi\nline"}]

    jsonl = tmp_path / "consents.jsonl"
    jsonl.write_text(
        '{"email": "a@example.com", "purpose": "marketing", "granted": true,'
        ' "recorded_at": "2024-01-01 00:00:00"}\n'
        "{not json\n"
        "[1, 2]\n"
        '{"purpose": "marketing", "granted": true, "recorded_at": "2024-01-01 00:00:00"}\n'
    )
    result = import_file(store, "consents", jsonl)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (4, 1, 3)
    reasons = set(result.quarantined_by_reason)
    assert any(r.startswith("line is not valid JSON") for r in reasons)
    assert "line is a JSON value but not an object" in reasons
    assert any(r.startswith("consents records need an identifier") for r in reasons)


def test_reimport_quarantines_nothing_twice(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "lines", "csv", [GOOD_LINE, _line(quantity="x")])
    first = import_file(store, "orders", path)
    second = import_file(store, "orders", path)
    assert first.rows_quarantined == second.rows_quarantined == 1
    assert (second.rows_accepted, second.rows_duplicate) == (0, 1)
    assert count(store, "quarantine") == 1
    assert count(store, "order_lines") == 1


def test_replay_after_fixing_the_mapping(store: Store, tmp_path: Path) -> None:
    lines = [
        {"Invoice": "A1", "Code": "P1", "Qty": "2", "Quantity": "2", "Price": "1"},
        {"Invoice": "A1", "Code": "P2", "Qty": "n/a", "Quantity": "1", "Price": "3"},
        {"Invoice": "A2", "Code": "P1", "Qty": "n/a", "Quantity": "x", "Price": "1"},
    ]
    lines = [{**line, "Date": "2024-03-01 10:00:00"} for line in lines]
    path = write_file(tmp_path, "lines", "csv", lines)
    columns = "order_id: Invoice, ordered_at: Date, product_code: Code, unit_price: Price"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(f"source: shop\ncolumns: {{{columns}, quantity: Qty}}\n")
    result = import_file(store, "orders", path, mapping=wrong)
    assert (result.rows_accepted, result.rows_quarantined) == (1, 2)
    assert rows(store, "SELECT total_amount FROM orders") == [{"total_amount": 2.0}]

    # replaying with the run's own mapping changes nothing: still open, same reason
    again = replay(store, kind="orders")
    assert (again.replayed, again.still_open) == (0, 2)
    assert quarantine.summary(store, status="open")["total"] == 2

    right = tmp_path / "right.yaml"
    right.write_text(f"columns: {{{columns}, quantity: Quantity}}\n")
    done = replay(store, run_id=result.run_id, mapping=right)
    assert (done.replayed, done.still_open) == (1, 1)
    assert done.still_open_by_reason == {
        "quantity: Input should be a valid integer, unable to parse string as an integer": 1
    }
    # the replayed line keeps its place in its order, and the order's total follows
    assert rows(store, "SELECT line_no, product_code FROM order_lines ORDER BY line_no") == [
        {"line_no": 1, "product_code": "P1"},
        {"line_no": 2, "product_code": "P2"},
    ]
    assert rows(store, "SELECT total_amount, source FROM orders") == [
        {"total_amount": 5.0, "source": "shop"}
    ]
    held = sorted(quarantined(store), key=lambda h: str(h["location"]))
    assert [(h["status"], h["value"]) for h in held] == [("replayed", "n/a"), ("open", "x")]
    assert held[0]["replayed_at"] is not None and held[1]["replayed_at"] is None


def test_replay_with_a_corrected_mapping(store: Store, tmp_path: Path) -> None:
    answers = [
        {"who": "a@example.com", "metric": "nps", "note": "9", "when": "2024-01-01 00:00:00"},
        {"who": "b@example.com", "metric": "nps", "note": "3", "when": "2024-01-02 00:00:00"},
    ]
    path = write_file(tmp_path, "answers", "csv", answers)
    wrong = tmp_path / "wrong.yaml"
    # a first mapping that forgets the score column: refused as a whole, nothing written
    wrong.write_text("columns: {email: who, answered_at: when}\n")
    with pytest.raises(MappingError):
        import_file(store, "surveys", path, mapping=wrong)
    # a mapping that reads the score from the wrong column: every record is quarantined
    wrong.write_text("columns: {email: who, answered_at: when, score: metric}\n")
    result = import_file(store, "surveys", path, mapping=wrong)
    assert result.rows_quarantined == 2
    assert set(result.quarantined_by_reason) == {
        "score: Input should be a valid integer, unable to parse string as an integer"
    }
    right = tmp_path / "right.yaml"
    right.write_text("columns: {email: who, answered_at: when, score: note}\n")
    done = replay(store, kind="surveys", mapping=right)
    assert (done.replayed, done.still_open, done.new_people) == (2, 0, 2)
    assert rows(store, "SELECT score FROM survey_answers ORDER BY score") == [
        {"score": 3},
        {"score": 9},
    ]
    assert quarantine.summary(store, status="open")["total"] == 0
    assert quarantine.summary(store, status="replayed")["total"] == 2
    # the corrected file imported later is recognised as the same answers
    again = import_file(store, "surveys", path, mapping=right)
    assert (again.rows_accepted, again.rows_duplicate) == (0, 2)


def test_replay_of_one_reason_leaves_the_others(store: Store, tmp_path: Path) -> None:
    lines = [
        _line(order_id="A1", quantity="two"),
        _line(order_id="A2", quantity="three"),
        _line(order_id="A3", unit_price="4,5"),
    ]
    path = write_file(tmp_path, "lines", "csv", lines)
    import_file(store, "orders", path)
    reasons = {r["field"]: r["reason"] for r in quarantine.summary(store)["by_reason"]}
    fix = tmp_path / "fix.yaml"
    fix.write_text("values: {quantity: {two: '2', three: '3'}, unit_price: {'4,5': '4.5'}}\n")
    done = replay(store, kind="orders", reason=reasons["quantity"], mapping=fix)
    assert (done.considered, done.replayed, done.still_open) == (2, 2, 0)
    left = quarantine.summary(store, status="open")["by_reason"]
    assert [(r["field"], r["count"]) for r in left] == [("unit_price", 1)]
    assert count(store, "orders") == 2
