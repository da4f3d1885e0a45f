"""Column mappings: how a file's columns become the canonical fields of an import kind.

A mapping is a small YAML document (``--mapping FILE``) or a named preset shipped in
``collect/presets/`` (``--preset NAME``)::

    kind: orders                  # optional; when given, must match the command's KIND
    source: online_retail         # source name of the records (default "import")
    timezone: Europe/London       # zone of timestamps written without one (default UTC)
    columns:                      # canonical field: file column
      order_id: Invoice
      customer_id: Customer ID
    constants:                    # value of a field the file has no column for
      currency: GBP
    values:                       # per field, file value: value to store
      channel: {Online: web, Boutique: store, "N/A": null}
    rules:
      integer_text: [customer_id] # "13085.0" -> "13085"
      returns: {order_id_prefix: C}
      fees: {codes: [POST, M], patterns: ["^gift_0001_"]}
    rates: {GBP: 1.17}            # orders: 1 GBP = 1.17 of the store's currency

A field with no entry under ``columns`` is read from a column of the same name, if any. A file
column holding numbers for a text field is read as text, integral numbers without decimals
(Parquet's 13085.0 is the id "13085").

``values`` rewrites a field's values as read from the file, before validation: an exact match
of a file value (case and spaces count) is replaced by its target, ``null`` making it missing;
other values pass unchanged. A target a field with a fixed list of values (``gender``, an
e-mail ``kind``, a consent ``purpose``, ...) does not accept is refused with the mapping, so a
mapping fix is checked before any record is replayed. Quote a file value YAML would read as a
boolean or a number (``"yes"``, ``"no"``, ``"1.0"``).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    StringConstraints,
    ValidationError,
)

from surmesure.collect.records import KINDS, Record
from surmesure.errors import InvalidInput

PRESETS_PACKAGE = "surmesure.collect.presets"
POSITION = "__pos"
"""Column added to a mapped table: the record's 0-based position in the file's table."""


class MappingError(InvalidInput):
    """A mapping that cannot work with the file or the kind; raised before anything is written."""

    code = "invalid_mapping"


class ReturnRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id_prefix: str = Field(min_length=1)


class FeeRule(BaseModel):
    """Product codes that are not products (postage, fees, adjustments): exact ``codes`` and
    ``patterns`` (regular expressions searched in the code, RE2 syntax)."""

    model_config = ConfigDict(extra="forbid")
    codes: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    integer_text: list[str] = Field(default_factory=list)
    returns: ReturnRule | None = None
    fees: FeeRule | None = None


class Mapping(BaseModel):
    """A validated mapping document (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    kind: str | None = None
    source: str | None = Field(default=None, min_length=1, max_length=64)
    timezone: str = "UTC"
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    values: dict[str, dict[str, str | int | float | bool | None]] = Field(default_factory=dict)
    rules: Rules = Field(default_factory=Rules)
    rates: dict[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")], PositiveFloat] = Field(
        default_factory=dict
    )
    """Orders only: the worth of one unit of each currency in the store's currency."""

    def check_kind(self, kind: str) -> None:
        """Refuse fields the kind does not have, and a mapping written for another kind."""
        if self.kind is not None and self.kind != kind:
            raise MappingError(
                f"Mapping {self.name or '(unnamed)'} is for kind {self.kind!r}, not {kind!r}.",
                hint=f"run `surmesure import {self.kind} FILE`, or change `kind:` in the mapping",
                field="kind",
            )
        if self.rates and kind != "orders":
            raise MappingError(
                f"Mapping section `rates` converts order amounts; kind {kind!r} has none.",
                hint="remove `rates` (or --rate), or import orders",
                field="rates",
            )
        model = KINDS[kind]
        self.check_fields(kind, list(model.model_fields))
        for name, table in self.values.items():
            _check_targets(model, name, table)

    def check_fields(self, kind: str, fields: list[str]) -> None:
        """Refuse a section naming a field other than ``fields`` (those of ``kind``)."""
        sections = (
            ("columns", self.columns),
            ("constants", self.constants),
            ("values", self.values),
        )
        for section, names in sections:
            unknown = sorted(set(names) - set(fields))
            if unknown:
                raise MappingError(
                    f"Mapping section `{section}` names {', '.join(map(repr, unknown))}, "
                    f"which kind {kind!r} does not have.",
                    hint=f"use the fields of {kind}: {', '.join(fields)}",
                    field=section,
                )


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            f"Mapping file {path} cannot be read ({exc}).", hint="check the --mapping path"
        ) from exc
    return parse_mapping(text, name=str(path))


def parse_mapping(text: str, *, name: str) -> Mapping:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise MappingError(f"Mapping {name} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise MappingError(f"Mapping {name} is not a YAML mapping (key: value).")
    return mapping_from_dict(document, name=name)


VALUES_HINT = (
    "write `values: {field: {file value: stored value}}`, e.g. values: {gender: {female: f}}"
)


def mapping_from_dict(document: dict[str, Any], *, name: str | None = None) -> Mapping:
    _check_value_keys(document.get("values"), name)
    try:
        mapping = Mapping.model_validate({"name": name, **document})
    except ValidationError as exc:
        first = exc.errors(include_context=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MappingError(
            f"Mapping {name} is invalid at `{where}`: {first['msg']}.",
            hint=VALUES_HINT
            if first["loc"][:1] == ("values",)
            else "see the mapping format in `surmesure import --help`",
            field=where,
        ) from exc
    _check_values(mapping)
    return mapping


def _check_value_keys(values: Any, name: str | None) -> None:
    """File values are text: YAML reads ``yes`` as a boolean and ``1.0`` as a number, which
    would never match the text of a file, so they are refused with the way to quote them."""
    if not isinstance(values, dict):
        return
    for field, table in values.items():
        for key in table if isinstance(table, dict) else ():
            if not isinstance(key, str):
                raise MappingError(
                    f"Mapping {name}: `values: {field}:` has the file value {key!r}, which "
                    "YAML read as a boolean, a number or null, not as text.",
                    hint=f'quote it as it is written in the file, e.g. "{key}": ...',
                    field=f"values.{field}",
                )


def _check_targets(model: type[Record], name: str, table: dict[str, Any]) -> None:
    """A target a field with a fixed list of values does not accept, refused now."""
    from surmesure.collect.columnar import field_spec

    choices = field_spec(model, name).choices
    if not choices:
        return
    for source, target in table.items():
        if target is not None and target not in choices:
            raise MappingError(
                f"`values: {name}:` maps {source!r} to {target!r}, which field {name!r} does "
                f"not accept.",
                hint=f"map it to one of: {', '.join(choices)} (or null for missing)",
                field=f"values.{name}",
            )


def map_values(values: pa.Array | pa.ChunkedArray, table: dict[str, Any], field: str) -> pa.Array:
    """``values`` with each exact match of a key of ``table`` replaced by its target."""
    column = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    textual = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    kind = pa.string() if textual or pa.types.is_null(column.type) else column.type
    column = column.cast(kind)
    sources, targets = [], []
    for source, target in table.items():
        try:
            sources.append(pa.scalar(source).cast(kind).as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # a file value this column's type cannot hold never matches
        try:
            targets.append(None if target is None else _target(target, kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise MappingError(
                f"`values: {field}:` maps {source!r} to {target!r}, which the file's "
                f"{kind} column for {field!r} cannot hold.",
                hint=VALUES_HINT,
                field=f"values.{field}",
            ) from exc
    if not sources:
        return column
    index = pc.index_in(column, value_set=pa.array(sources, kind))
    replaced = pc.take(pa.array(targets, kind), index)
    return pc.if_else(pc.is_null(index), column, replaced)


def _target(target: str | int | float | bool, kind: pa.DataType) -> Any:
    if pa.types.is_string(kind):
        return str(target).lower() if isinstance(target, bool) else str(target)
    return pa.scalar(target).cast(kind).as_py()


def _check_values(mapping: Mapping) -> None:
    """Checks a type cannot express: a known time zone, fee patterns that compile. (Done here
    rather than in model validators, so no exception is kept inside a validation error.)"""
    try:
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            f"Mapping {mapping.name}: `timezone: {mapping.timezone}` is not a known time zone.",
            hint="use a zone name such as UTC or Europe/Paris",
            field="timezone",
        ) from None
    fees = mapping.rules.fees
    for pattern in fees.patterns if fees else []:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise MappingError(
                f"Mapping {mapping.name} has a fee pattern {pattern!r} that is not a regular "
                f"expression ({exc}).",
                hint="fix `rules: fees: patterns:` in the mapping",
                field="rules.fees.patterns",
            ) from None


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(PRESETS_PACKAGE).iterdir()
        if p.name.endswith(".yaml")
    )


def load_preset(name: str) -> Mapping:
    """The preset ``name`` shipped with surmesure."""
    if name not in preset_names():
        raise MappingError(
            f"There is no preset named {name!r}.",
            hint=f"use one of: {', '.join(preset_names()) or '(none)'}",
            field="preset",
        )
    text = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return parse_mapping(text, name=f"preset {name}")


def resolve_mapping(mapping: Path | None, preset: str | None) -> Mapping:
    if mapping is not None and preset is not None:
        raise MappingError(
            "Both a mapping file and a preset were given.", hint="use --mapping or --preset"
        )
    if mapping is not None:
        return load_mapping(mapping)
    if preset is not None:
        return load_preset(preset)
    return Mapping(name="default")


def _is_text_field(model: type[Record], name: str) -> bool:
    from surmesure.collect.columnar import field_spec

    return field_spec(model, name).base in ("str", "literal")


def integer_text(values: pa.Array) -> pa.Array:
    """Numbers as text for a text field: integral values without decimals ("13085")."""
    if pa.types.is_floating(values.type):
        whole = pc.equal(values, pc.floor(values))
        fits = pc.less(pc.abs(values), 2.0**53)
        as_int = pc.if_else(pc.and_(whole, fits), values, None).cast(pa.int64(), safe=False)
        return pc.coalesce(as_int.cast(pa.string()), values.cast(pa.string()))
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.replace_substring_regex(
            values.cast(pa.string()), r"^(\s*-?\d+)\.0*(\s*)$", r"\1\2"
        )
    return values.cast(pa.string())


def apply_mapping(raw: pa.Table, mapping: Mapping, kind: str, *, origin: str) -> pa.Table:
    """The canonical fields of ``kind`` found in ``raw`` (renamed, with constants) after a
    :data:`POSITION` column, same rows in the same order. Raises :class:`MappingError`,
    naming the column and the fix, when a mapped column is absent or a required field has no
    column; ``origin`` names the file in messages."""
    model = KINDS[kind]
    mapping.check_kind(kind)
    present = set(raw.column_names)
    out: dict[str, pa.Array | pa.ChunkedArray] = {
        POSITION: pa.array(range(raw.num_rows), pa.int64())
    }
    for name, info in model.model_fields.items():
        column = mapping.columns.get(name)
        if column is not None:
            if column not in present:
                raise MappingError(
                    f"The mapping reads field {name!r} from column {column!r}, which {origin} "
                    f"does not have (columns: {', '.join(raw.column_names)}).",
                    hint=f"fix `columns: {name}:` in the mapping to one of the file's columns",
                    field=name,
                )
        elif name in present:
            column = name
        if column is not None:
            values = raw.column(column)
            numbers_as_text = _is_text_field(model, name) and not (
                pa.types.is_string(values.type) or pa.types.is_null(values.type)
            )
            if numbers_as_text or name in mapping.rules.integer_text:
                values = integer_text(values.combine_chunks())
            if name in mapping.values:
                values = map_values(values, mapping.values[name], name)
            out[name] = values
        elif name in mapping.constants:
            constant = mapping.constants[name]
            if _is_text_field(model, name):
                out[name] = pa.array([str(constant)] * raw.num_rows, pa.string())
            else:
                out[name] = pa.array([constant] * raw.num_rows)
        elif info.is_required() and not (raw.num_rows == 0 and not raw.column_names):
            raise MappingError(
                f"Required field {name!r} has no column in {origin} "
                f"(columns: {', '.join(raw.column_names) or 'none'}).",
                hint=f"add `{name}: <column>` under `columns:` in a mapping file (--mapping), "
                f"or rename the file's column to {name!r}",
                field=name,
            )
    return pa.table(out)
