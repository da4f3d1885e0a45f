"""Undoing a merge on both stores: each side gets its own rows back and stays apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from protect.person_world import ANA, BO, count_where, import_world, person_of, write_world
from surmesure.errors import Conflict, NotFound
from surmesure.protect.export import export_person
from surmesure.store import Store
from surmesure.unify.profile import show
from surmesure.unify.unmerge import unmerge


def _orders(store: Store, person: int) -> set[str]:
    profile_orders = export_person(store, str(person)).tables.get("orders", [])
    return {o["order_id"] for o in profile_orders}


def test_unmerge_gives_each_side_its_own_rows_and_blocks_a_new_merge(
    store: Store, tmp_path: Path
) -> None:
    import_world(store, write_world(tmp_path))
    ana = show(store, f"email:{ANA['email']}")
    (merge,) = ana.merges
    shop_node, crm_node = merge["survivor_id"], merge["absorbed_id"]
    assert ana.person_id == shop_node and crm_node in ana.nodes
    assert {t["name"]: t["value"] for t in ana.traits}["first_name"] == "Ana"

    done = unmerge(store, f"customer_id:{ANA['customer_id']}", merge["merge_id"])

    assert (done.survivor_id, done.absorbed_id, done.restored_nodes) == (
        shop_node,
        crm_node,
        [crm_node],
    )
    assert done.moved["identifiers"] == 2
    shop = show(store, f"email:{ANA['email']}")
    crm = show(store, f"customer_id:{ANA['customer_id']}")
    assert (shop.person_id, crm.person_id) == (shop_node, crm_node)
    assert {(i["kind"], i["value"]) for i in shop.identifiers} == {
        ("email", ANA["email"]),
        ("loyalty_card", ANA["loyalty_card"]),
    }
    assert {(i["kind"], i["value"]) for i in crm.identifiers} == {
        ("customer_id", ANA["customer_id"]),
        ("phone", ANA["phone"]),
    }
    assert {t["name"]: t["value"] for t in shop.traits}["first_name"] == "Anna"
    assert {t["name"]: t["value"] for t in crm.traits}["first_name"] == "Ana"
    assert _orders(store, shop_node) == {"A-1002"}
    assert _orders(store, crm_node) == {"A-1001", "R-1003"}
    assert [(c["granted"], c["recorded_at"].month) for c in shop.consents] == [(True, 1)]
    assert [(c["granted"], c["recorded_at"].month) for c in crm.consents] == [(False, 2)]
    assert shop.merges[0]["undone_at"] == done.undone_at
    assert count_where(store, "people", "merged_into IS NULL") == 3
    assert "merge_blocks" in export_person(store, str(crm_node)).tables
    with pytest.raises(Conflict, match="already undone"):
        unmerge(store, str(crm_node), merge["merge_id"])


def test_reimport_after_unmerge_reports_a_conflict_instead_of_merging(
    store: Store, tmp_path: Path
) -> None:
    files = write_world(tmp_path)
    import_world(store, files)
    (merge,) = show(store, f"email:{ANA['email']}").merges
    unmerge(store, f"email:{ANA['email']}", merge["merge_id"])

    again = import_world(store, files)

    assert sum(r.merges for r in again) == 0
    assert sum(r.conflicts for r in again) >= 1
    assert person_of(store, "customer_id", ANA["customer_id"]) == merge["absorbed_id"]
    assert person_of(store, "email", ANA["email"]) == merge["survivor_id"]
    assert count_where(store, "merges", "undone_at IS NULL") == 0


def test_unmerge_refuses_a_merge_of_someone_else(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    (merge,) = show(store, f"email:{ANA['email']}").merges
    with pytest.raises(Conflict) as caught:
        unmerge(store, f"email:{BO['email']}", merge["merge_id"])
    assert caught.value.hint and "person show" in caught.value.hint
    with pytest.raises(NotFound):
        unmerge(store, f"email:{ANA['email']}", 999)
    assert count_where(store, "merges", "undone_at IS NULL") == 1
