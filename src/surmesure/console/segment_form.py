"""The segment builder's form and the definition it stands for, both ways.

The form holds a name, a description, how its conditions join (``all`` or ``any``), rows of
conditions (a metric, a trait, a count of events or of purchases, a consent, near a store or
another segment; an operator; a value; a window in days for events and purchases; NOT) and a
raw condition in YAML or JSON for what rows cannot say (an amount spent, a point on the map,
nested all / any / not).

Rows of the later kinds read their fields so: a purchase row names a category (or
``product:CODE``), counts at least ``value`` purchases (1 when blank) within ``days``; a consent
row names a purpose, its value is a channel, ``=`` when it is granted and ``≠`` when refused; a
near row names a store, its value the radius in km (``≤``).
Row ``i`` is the condition ``where.<join>[i]`` of the document and the raw condition comes
after the rows (a raw ``all`` under an ``all``, or ``any`` under ``any``, spliced in), so an
error's path (:mod:`surmesure.segment.definitions`) names the row and the field to show it
beside (:func:`place_of`).

A saved definition opens in the form with each top-level condition a row can say as a row, and
the rest in the raw condition: a condition becomes a row only when the row gives it back
unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from surmesure.documents import load_yaml
from surmesure.domain.segments import (
    METRICS,
    AllNode,
    AnyNode,
    Condition,
    SegmentDefinition,
    as_number,
)
from surmesure.errors import InvalidInput

KINDS = ("metric", "trait", "event", "purchase", "consent", "near", "segment")
#: the kinds whose rows take a window in days
WINDOWED = ("event", "purchase")
PRODUCT = "product:"
OPS = ("eq", "ne", "in", "lt", "le", "gt", "ge", "contains", "exists", "missing")
#: an event row counts events: at least (ge), at most (le) or exactly (eq) the value
EVENT_OPS = ("ge", "le", "eq")
COMPARING = ("lt", "le", "gt", "ge")
_ROW_KEY = re.compile(r"^c(\d+)\.kind$")
#: the most rows the builder holds (more: the raw condition, or saved segments referenced);
#: every row is drawn back with its lists, so a form of many thousand rows would cost seconds
MAX_ROWS = 50
_PATH = re.compile(r"^where\.(?:all|any)\[(\d+)\](?:\.not)?\.(\w+)(?:\.(\w+))?")
#: the field of a row showing an error on a part of its condition
_FIELD_OF = {
    "name": "name",
    "op": "op",
    "value": "value",
    "min_reliability": "value",
    "min_count": "value",
    "max_count": "value",
    "within_days": "days",
    "category": "name",
    "product": "name",
    "purpose": "name",
    "channel": "value",
    "granted": "op",
    "store": "name",
    "radius_km": "value",
}


@dataclass
class Row:
    kind: str = "metric"
    name: str = ""
    op: str = "eq"
    value: str = ""
    days: str = ""
    negate: bool = False


@dataclass
class Draft:
    name: str = ""
    description: str = ""
    join: str = "all"
    rows: list[Row] = field(default_factory=lambda: [Row()])
    raw: str = ""


def read_form(form: dict[str, str]) -> Draft:
    """The draft a submitted form holds; ``action`` ``add`` adds a row (up to
    :data:`MAX_ROWS`), ``remove-N`` drops row N; :class:`InvalidInput` past :data:`MAX_ROWS`."""
    indices = sorted(int(m[1]) for key in form if (m := _ROW_KEY.match(key)))
    if len(indices) > MAX_ROWS:
        raise InvalidInput(
            f"The form holds {len(indices):,} conditions; the builder holds {MAX_ROWS} at most.",
            field="where",
            hint="write the rest in the raw condition, or refer to saved segments",
        )
    rows = [
        Row(
            kind=form.get(f"c{i}.kind", "metric"),
            name=form.get(f"c{i}.name", "").strip(),
            op=form.get(f"c{i}.op", "eq"),
            value=form.get(f"c{i}.value", "").strip(),
            days=form.get(f"c{i}.days", "").strip(),
            negate=form.get(f"c{i}.not") is not None,
        )
        for i in indices
    ]
    action = form.get("action", "")
    if action == "add" and len(rows) < MAX_ROWS:
        rows.append(Row())
    elif action.startswith("remove-") and action[7:].isdigit() and int(action[7:]) < len(rows):
        del rows[int(action[7:])]
    return Draft(
        name=form.get("name", "").strip(),
        description=form.get("description", "").strip(),
        join="any" if form.get("join") == "any" else "all",
        rows=rows,
        raw=form.get("raw", ""),
    )


def _number(text: str) -> int | float | str:
    try:
        return as_number(float(text)) if text.strip() else text
    except ValueError:
        return text


def _value(row: Row) -> Any:
    if row.op in ("exists", "missing") and not row.value:
        return None
    numbers = (row.kind == "metric" and METRICS.get(row.name) == "number") or (
        row.kind == "trait" and row.op in COMPARING
    )
    parts = [p.strip() for p in row.value.split(",")] if row.op == "in" else [row.value]
    found = [_number(p) if numbers else p for p in parts if p or row.op != "in"]
    return found if row.op == "in" else found[0]


def _whole(text: str, place: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"{place}: {what} {text!r} is not a whole number.",
            hint="write a whole number such as 3",
            field=place,
        ) from None


def condition_of(row: Row, place: str) -> dict[str, Any]:
    """The condition document of ``row``, found at ``place`` (``where.all[2]``)."""
    days_place = f"{place}.{row.kind}.within_days"
    if row.kind == "event":
        event: dict[str, Any] = {"name": row.name} if row.name else {}
        if row.op not in EVENT_OPS:
            raise InvalidInput(
                f"{place}.event.op: an event row counts events; {row.op!r} is not a count.",
                hint="choose at least, at most or exactly",
                field=f"{place}.event.op",
            )
        count = _whole(row.value or "1", f"{place}.event.min_count", "the count")
        if row.op in ("ge", "eq"):
            event["min_count"] = count
        if row.op in ("le", "eq"):
            event["max_count"] = count
            if row.op == "le":
                event["min_count"] = 0
        if event.get("min_count") == 1:
            del event["min_count"]  # the default, left out as a saved document leaves it out
        if row.days:
            event["within_days"] = _whole(row.days, days_place, "the window")
        condition: dict[str, Any] = {"event": event}
    elif row.kind == "purchase":
        condition = {"purchase": _purchase(row, place, days_place)}
    elif row.days:
        raise InvalidInput(
            f"{days_place}: a window in days applies to counts of events and purchases only.",
            hint="clear the days",
            field=days_place,
        )
    elif row.kind == "consent":
        if row.op not in ("eq", "ne"):
            raise InvalidInput(
                f"{place}.consent.granted: a consent row is granted (=) or refused (≠).",
                hint="choose = equals or ≠ differs from",
                field=f"{place}.consent.granted",
            )
        consent: dict[str, Any] = {"purpose": row.name, "channel": row.value}
        if row.op == "ne":
            consent["granted"] = False
        condition = {"consent": consent}
    elif row.kind == "near":
        if row.op != "le":
            raise InvalidInput(
                f"{place}.near.radius_km: a near row is within (≤) a radius in km.",
                hint="choose ≤ at most",
                field=f"{place}.near.radius_km",
            )
        condition = {"near": {"store": row.name, "radius_km": _number(row.value)}}
    elif row.kind == "segment":
        condition = {"segment": row.name}
    elif row.kind in ("metric", "trait"):
        body: dict[str, Any] = {"name": row.name, "op": row.op}
        value = _value(row)
        if value is not None:
            body["value"] = value
        condition = {row.kind: body}
    else:
        raise InvalidInput(
            f"{place}: {row.kind!r} is not a kind of condition a row holds.",
            hint=f"choose one of {', '.join(KINDS)}",
            field=f"{place}.kind",
        )
    return {"not": condition} if row.negate else condition


def _purchase(row: Row, place: str, days_place: str) -> dict[str, Any]:
    if row.op != "ge":
        raise InvalidInput(
            f"{place}.purchase.min_count: a purchase row counts at least so many purchases; "
            f"{row.op!r} is not that.",
            hint="choose ≥ at least",
            field=f"{place}.purchase.min_count",
        )
    purchase: dict[str, Any] = {}
    if row.name.startswith(PRODUCT):
        purchase["product"] = row.name[len(PRODUCT) :].strip()
        if not purchase["product"]:
            raise InvalidInput(
                f"{place}.purchase.product: {row.name!r} names no product.",
                hint=f"write its code after {PRODUCT!r}, or a category alone",
                field=f"{place}.purchase.product",
            )
    elif row.name:
        purchase["category"] = row.name
    count = _whole(row.value or "1", f"{place}.purchase.min_count", "the count")
    if count != 1:
        purchase["min_count"] = count
    if row.days:
        purchase["within_days"] = _whole(row.days, days_place, "the window")
    return purchase


def raw_condition(text: str, place: str) -> Any:
    """The raw condition (YAML or JSON) at ``place``; ``None`` when blank."""
    if not text.strip():
        return None
    try:
        found = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidInput(
            f"{place}: the raw condition is not valid YAML or JSON{where}.",
            hint="write one condition, e.g. `purchase: {category: shoes, within_days: 90}`",
            field=place,
        ) from exc
    return found


def document_of(draft: Draft) -> dict[str, Any]:
    """The definition document the draft stands for (not yet validated)."""
    items = [condition_of(r, f"where.{draft.join}[{i}]") for i, r in enumerate(draft.rows)]
    raw = raw_condition(draft.raw, f"where.{draft.join}[{len(items)}]")
    if isinstance(raw, dict) and list(raw) == [draft.join] and isinstance(raw[draft.join], list):
        items.extend(raw[draft.join])  # an all inside an all is one all
    elif raw is not None:
        items.append(raw)
    if not items:
        raise InvalidInput(
            "where: the segment has no condition.",
            hint="add a condition row, or write one in the raw condition",
            field="where",
        )
    document: dict[str, Any] = {"name": draft.name, "where": {draft.join: items}}
    if draft.description:
        document["description"] = draft.description
    return document


def place_of(draft: Draft, field_path: str | None) -> str:
    """The form field an error at ``field_path`` is shown beside: ``c2.value``, ``raw``,
    ``name``, ``description``, or ``where`` (the conditions as a whole)."""
    path = field_path or "where"
    if path in ("name", "description"):
        return path
    found = _PATH.match(path)
    if found is None:
        return "where"
    index = int(found[1])
    if index >= len(draft.rows):
        return "raw"
    kind, part = found[2], found[3]
    if kind == "kind":
        return f"c{index}.kind"
    if kind == "segment":
        return f"c{index}.name"
    return f"c{index}.{_FIELD_OF.get(part or '', 'value')}"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _row_of(document: dict[str, Any]) -> Row | None:
    negate = set(document) == {"not"}
    inner = document["not"] if negate else document
    if not isinstance(inner, dict) or len(inner) != 1:
        return None
    kind, body = next(iter(inner.items()))
    if kind == "segment":
        return Row("segment", str(body), "eq", "", "", negate)
    if kind == "event" and isinstance(body, dict):
        low, high = body.get("min_count", 1), body.get("max_count")
        op, count = (
            ("eq", low) if high == low else ("le", high) if high is not None else ("ge", low)
        )
        days = body.get("within_days")
        return Row("event", str(body.get("name", "")), op, str(count), _text(days), negate)
    if kind in ("metric", "trait") and isinstance(body, dict):
        return Row(kind, str(body.get("name", "")), str(body.get("op", "eq")),
                   _text(body.get("value")), "", negate)  # fmt: skip
    if kind == "purchase" and isinstance(body, dict):
        name = f"{PRODUCT}{body['product']}" if "product" in body else body.get("category", "")
        return Row("purchase", str(name), "ge", str(body.get("min_count", 1)),
                   _text(body.get("within_days")), negate)  # fmt: skip
    if kind == "consent" and isinstance(body, dict):
        op = "eq" if body.get("granted", True) else "ne"
        return Row("consent", str(body.get("purpose", "")), op, str(body.get("channel", "")),
                   "", negate)  # fmt: skip
    if kind == "near" and isinstance(body, dict) and "store" in body:
        return Row("near", str(body["store"]), "le", _text(body.get("radius_km")), "", negate)
    return None


def draft_of(definition: SegmentDefinition) -> Draft:
    """The form showing ``definition`` (see the module docstring)."""
    root: Condition = definition.where
    join, items = ("any", root.any) if isinstance(root, AnyNode) else (
        ("all", root.all) if isinstance(root, AllNode) else ("all", [root]))  # fmt: skip
    rows: list[Row] = []
    rest: list[dict[str, Any]] = []
    for item in items:
        document = item.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        row = _row_of(document)
        try:
            same = row is not None and condition_of(row, "where") == document
        except InvalidInput:
            same = False
        if row is not None and same:
            rows.append(row)
        else:
            rest.append(document)
    raw = rest[0] if len(rest) == 1 else {join: rest} if rest else None
    text = "" if raw is None else yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return Draft(definition.name, definition.description, join, rows or [], text)
