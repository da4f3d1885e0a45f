"""Everyone's purchases, home store and segment held in arrays (:class:`People`) read as the
one-person read gives them, on both backends and on a real slice; their purchase counts are
those the dictionary path counts; the learned signals' person rows look up as a dictionary."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from reco_world import AS_OF, load_world, person_id
from retail_slice import retail_slice

from surmesure.decide.recommend import learned, people, ranker
from surmesure.store import Store


def _same_reads(store: Store, as_of: datetime) -> people.People:
    with store.connect() as c:
        held = people.everyone(c, as_of)
        for pid in held:
            got, one = held[pid], people.person(c, pid, as_of)
            assert (got.person_id, got.home_store, got.segment) == (
                one.person_id,
                one.home_store,
                one.segment,
            )
            # the same purchases, in order of time then product
            assert Counter(got.purchases) == Counter(one.purchases)
            assert list(got.purchases) == sorted(got.purchases)
    return held


def test_people_read_as_one_person_is_read(store: Store, tmp_path: Path) -> None:
    load_world(store, tmp_path)
    held = _same_reads(store, AS_OF)
    c1, c4 = person_id(store, "C1"), person_id(store, "C4")
    assert held[c1].home_store == "S1"
    # C1's o1 without its fee line; C4's return R1 and its order after AS_OF do not count
    assert [code for _, code in held[c1].purchases] == ["A", "B", "C"]
    assert [code for _, code in held[c4].purchases] == ["B", "D"]
    assert c1 in held and -1 not in held and "C1" not in held
    with pytest.raises(KeyError):
        held[max(held) + 1]
    # the counts are the dictionary path's, entry for entry
    _same_counts(held)


def _same_counts(held: people.People) -> None:
    fast = held.counts()
    slow = learned.counted({pid: d.purchases for pid, d in held.items()})
    assert fast.codes == slow.codes
    assert np.array_equal(fast.people, slow.people)

    def entries(c: learned.Counts) -> set[tuple[int, int, float]]:
        return set(zip(c.row.tolist(), c.column.tolist(), c.count.tolist(), strict=True))

    assert entries(fast) == entries(slow)
    assert len(fast.row) == len(slow.row)


def test_people_on_a_real_slice(tmp_path: Path) -> None:
    store = retail_slice(tmp_path, 16, "2010-09-01")
    try:
        held = _same_reads(store, datetime(2010, 7, 1))
        assert len(held) > 200
        counts = held.counts()
        # some customers bought the same product at two order times: counted twice
        assert counts.count.max() >= 2
        _same_counts(held)
        # the first purchases of a month, as the per-person path finds them
        plain_all = dict(held.items())
        for start, until in ((datetime(2010, 3, 1), datetime(2010, 4, 1)),
                             (datetime(2009, 12, 1), datetime(2010, 7, 1))):  # fmt: skip
            found = ranker.first_purchases(held, start, until)
            assert found and found == ranker.first_purchases(plain_all, start, until)
        # a chosen few, in the order of their ids, absent ids left out
        ids = list(held)
        wanted = [ids[7], ids[3], -5, ids[40]]
        chosen_ids, rows = people.chosen(held, wanted)
        assert chosen_ids == sorted([ids[3], ids[7], ids[40]])
        assert [d.person_id for d in rows[0:3]] == chosen_ids
        assert rows[1] == held[ids[7]]
        everyone_ids, all_rows = people.chosen(held)
        assert everyone_ids == ids and len(all_rows) == len(held)
        # a plain mapping gives the same
        plain = {p: held[p] for p in ids[:50]}
        assert people.chosen(plain, wanted)[0] == [ids[3], ids[7], ids[40]]
    finally:
        store.engine.dispose()


def test_id_rows_look_up_as_a_dictionary() -> None:
    ids = np.asarray([3, 8, 21, 1_000_000_007], dtype=np.int64)
    rows = learned.IdRows(ids)
    assert dict(rows) == {3: 0, 8: 1, 21: 2, 1_000_000_007: 3}
    assert rows.get(8) == 1 and rows.get(9) is None and rows.get(2**70) is None
    assert "8" not in rows and 8.0 not in rows and np.int64(21) in rows
    assert len(rows) == 4
    with pytest.raises(KeyError):
        rows[4]
    empty = learned.IdRows(np.zeros(0, np.int64))
    assert empty.get(1) is None and len(empty) == 0
