"""The mappings a replay can be offered: the presets, the example fixes shipped with the demo
world, and the mappings past import runs recorded.

Each is known by a key: ``preset:NAME``, ``example:NAME`` (a file of
:data:`EXAMPLES_PACKAGE`) or ``run:RUN_ID`` (the mapping that run recorded in ``import_runs``).
Only the mappings that can read records of the kind asked are offered (a mapping written for
another kind, or naming fields the kind does not have, is left out). Stored mappings that are
the same document are offered once, by their latest run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import orjson
import sqlalchemy as sa

from surmesure.collect.mapping import (
    Mapping,
    MappingError,
    load_preset,
    mapping_from_dict,
    parse_mapping,
    preset_names,
)
from surmesure.collect.records import KINDS
from surmesure.errors import InvalidInput
from surmesure.store import schema
from surmesure.store.engine import Store

EXAMPLES_PACKAGE = "surmesure.world.mappings"
"""Value maps that fix the refusals the demo world's files are made with."""


@dataclass(frozen=True, slots=True)
class KnownMapping:
    key: str
    label: str
    mapping: Mapping


@cache
def _shipped() -> tuple[KnownMapping, ...]:
    """The presets and the examples: files of the package, read once a process."""
    presets = [KnownMapping(f"preset:{n}", f"{n} (preset)", load_preset(n)) for n in preset_names()]
    return (*presets, *_examples())


def _examples() -> list[KnownMapping]:
    found = []
    for item in sorted(resources.files(EXAMPLES_PACKAGE).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            name = item.name.removesuffix(".yaml")
            text = item.read_text(encoding="utf-8")
            found.append(
                KnownMapping(f"example:{name}", f"{name} (example)", parse_mapping(text, name=name))
            )
    return found


def _stored(store: Store, kind: str) -> list[KnownMapping]:
    runs = schema.import_runs
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.path, runs.c.mapping)
            .where(runs.c.kind == kind, runs.c.mapping.is_not(None))
            .order_by(runs.c.run_id.desc())
        ).all()
    seen: set[bytes] = set()
    found = []
    for run_id, path, stored in rows:
        document = stored if isinstance(stored, dict) else orjson.loads(stored)
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        if text in seen:
            continue
        seen.add(text)
        fields = {k: v for k, v in document.items() if k != "name"}
        mapping = mapping_from_dict(fields, name=document.get("name"))
        label = f"run {run_id}: {mapping.name or 'default'} ({str(path).rsplit('/', 1)[-1]})"
        found.append(KnownMapping(f"run:{run_id}", label, mapping))
    return found


def _fits(mapping: Mapping, kind: str) -> bool:
    try:
        mapping.check_kind(kind)
    except MappingError:
        return False
    return True


def known_mappings(store: Store, kind: str) -> list[KnownMapping]:
    """The mappings that can read records of ``kind``: presets, examples, then stored ones
    (newest run first); none for a kind that is not a file import's (the rows a campaign
    brings back are read by their own columns)."""
    if kind not in KINDS:
        return []
    every = [*_shipped(), *_stored(store, kind)]
    return [m for m in every if _fits(m.mapping, kind)]


def known_mapping(store: Store, kind: str, key: str) -> Mapping:
    """The mapping of ``key`` among :func:`known_mappings`; :class:`InvalidInput` otherwise."""
    for found in known_mappings(store, kind):
        if found.key == key:
            return found.mapping
    raise InvalidInput(
        f"No mapping {key!r} can read records of kind {kind!r}.",
        field="mapping",
        hint="choose one of the mappings offered, or none to use each run's own",
    )
