"""A kept model's payload whose arrays do not fit together (tampered, or written by other
code) is refused as it is read, naming the payload, rather than failing deep in a
recommendation."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.sparse import csr_matrix

from surmesure.config import get_settings
from surmesure.decide.recommend import kept
from surmesure.decide.recommend.learned import Learned
from surmesure.errors import InvalidInput
from surmesure.store import Store


def _arrays() -> dict[str, Any]:
    codes = ("A", "B", "C")
    learned = Learned(
        codes=codes,
        index={c: j for j, c in enumerate(codes)},
        similarity=csr_matrix(np.eye(3, dtype=np.float32)),
        item_factors=np.ones((3, 4), dtype=np.float32),
        person_row={7: 0, 9: 1},
        person_factors=np.ones((2, 4), dtype=np.float32),
        regularization=0.1,
    )
    with np.load(io.BytesIO(kept.payload(learned, None)), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _blob(arrays: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_a_sound_payload_is_read() -> None:
    learned, forest = kept.unpack(_blob(_arrays()))
    assert learned is not None and forest is None
    assert learned.person_row == {7: 0, 9: 1} and learned.item_factors.shape == (3, 4)


TAMPERED: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("no similarity", lambda a: a.pop("sim_data")),
    ("item rows", lambda a: a.__setitem__("item_factors", np.ones((2, 4), np.float32))),
    ("person rows", lambda a: a.__setitem__("person_factors", np.ones((5, 4), np.float32))),
    ("person width", lambda a: a.__setitem__("person_factors", np.ones((2, 3), np.float32))),
    ("index outside", lambda a: a.__setitem__("sim_indices", np.asarray([0, 1, 99], np.int32))),
    ("codes as text", lambda a: a.__setitem__("item_factors", np.asarray(["x"] * 3))),
    ("no regularization", lambda a: a.__setitem__("regularization", np.asarray([]))),
]


@pytest.mark.parametrize(("what", "tamper"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_a_payload_whose_arrays_do_not_fit_is_refused(
    what: str, tamper: Callable[[dict[str, Any]], None]
) -> None:
    arrays = _arrays()
    tamper(arrays)
    with pytest.raises(InvalidInput, match="payload cannot be read") as caught:
        kept.unpack(_blob(arrays))
    assert caught.value.field == "recommendation_models.payload"


def test_a_payload_that_is_not_an_archive_is_refused() -> None:
    with pytest.raises(InvalidInput, match="payload cannot be read"):
        kept.unpack(b"not an npz")


def test_a_payload_tampered_in_the_store_is_refused_as_it_is_loaded(store: Store) -> None:
    """Changed without its digest, or with a digest made again for arrays that do not fit,
    a kept version is refused with an error naming the payload, on both stores."""
    at = datetime(2026, 1, 1)
    learned, _ = kept.unpack(_blob(_arrays()))
    with store.begin() as conn:
        version = kept.save(
            conn, learned, None, as_of=at, fitted_at=at, data_until=None, metrics={}
        )
    arrays = _arrays()
    arrays["person_factors"] = np.ones((9, 4), np.float32)
    forged = _blob(arrays)
    table = kept.TABLE
    cases = [
        ("0" * 64, "does not match its digest"),
        (hashlib.sha256(forged).hexdigest(), "payload cannot be read"),
    ]
    for digest, says in cases:
        with store.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.version == version)
                .values(payload=forged, digest=digest)
            )
        kept.forget()
        with store.connect() as conn:
            found = kept.latest(conn, at)
            assert found is not None and found.version == version
            with pytest.raises(InvalidInput, match=says):
                kept.load(store, conn, found)


def test_fitting_beyond_the_versions_kept_removes_the_oldest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each version holds every fitted person's taste factors: the store keeps the latest
    ``SURMESURE_RECOMMEND_MODELS_KEPT`` (3), and 0 keeps them all."""
    learned, _ = kept.unpack(_blob(_arrays()))

    def fit(day: int) -> int:
        at = datetime(2026, 1, day)
        with store.begin() as conn:
            return kept.save(conn, learned, None, as_of=at, fitted_at=at, data_until=None,
                             metrics={})  # fmt: skip

    def versions() -> list[int]:
        with store.connect() as conn:
            found = conn.execute(sa.select(kept.TABLE.c.version).order_by(kept.TABLE.c.version))
            return [int(v) for v in found.scalars()]

    made = [fit(day) for day in range(1, 6)]
    assert made == [1, 2, 3, 4, 5] and versions() == [3, 4, 5]
    with store.connect() as conn:
        assert kept.latest(conn, datetime(2026, 1, 2)) is None  # what served then is gone
        found = kept.latest(conn, datetime(2026, 2, 1))
        assert found is not None and found.version == 5
    monkeypatch.setenv("SURMESURE_RECOMMEND_MODELS_KEPT", "0")
    get_settings.cache_clear()
    try:
        assert [fit(day) for day in (6, 7)] == [6, 7] and versions() == [3, 4, 5, 6, 7]
    finally:
        monkeypatch.delenv("SURMESURE_RECOMMEND_MODELS_KEPT")
        get_settings.cache_clear()
