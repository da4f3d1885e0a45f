"""Properties of identity planning on random batches drawn from small identifier pools,
trusted ones and low-trust ones (whose identifiers but the device's own are claims)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from surmesure.domain.identity import LIMITS
from surmesure.unify.graph import Identifier, IdentityGraph, Plan

POOLS: dict[str, list[str]] = {
    "customer_id": ["C1", "C2", "C3"],
    "loyalty_card": ["L1", "L2"],
    "email": ["a@x.org", "b@x.org", "c@x.org", "d@x.org"],
    "phone": ["+33600000001", "+33600000002"],
    "anonymous_id": ["anon-1", "anon-2", "anon-3"],
}

Record = tuple[str, list[Identifier]]


def identifiers(kinds: Sequence[str]) -> st.SearchStrategy[list[Identifier]]:
    one = st.sampled_from([(k, v) for k in kinds for v in POOLS[k]])
    return st.lists(one, min_size=0, max_size=3)


def batches(kinds: Sequence[str] = tuple(POOLS)) -> st.SearchStrategy[list[Record]]:
    return st.lists(identifiers(kinds), min_size=1, max_size=12).map(
        lambda ids: [(f"r{i}", list(x)) for i, x in enumerate(ids)]
    )


class Store:
    """What the resolver keeps between batches: identifier -> node, node -> parent node,
    with real (positive, increasing) ids given to the new nodes of each plan."""

    def __init__(self) -> None:
        self.node_of: dict[Identifier, int] = {}
        self.parent: dict[int, int] = {}
        self.weak: set[Identifier] = set()
        self.next_id = 1

    def root(self, node: int) -> int:
        while node in self.parent:
            node = self.parent[node]
        return node

    def run(self, batch: list[Record], *, trusted: bool = True) -> tuple[Plan, list[int | None]]:
        nodes = set(self.node_of.values()) | set(self.parent)
        limited: dict[int, list[Identifier]] = defaultdict(list)
        for ident, node in self.node_of.items():
            if ident[0] in LIMITS:
                limited[self.root(node)].append(ident)
        graph = IdentityGraph(
            dict(self.node_of), {n: self.root(n) for n in nodes}, limited, weak=self.weak
        )
        plan = graph.plan(batch, None if trusted else [claimed(ids) for _, ids in batch])
        real: dict[int, int] = {}
        for temp in plan.new_nodes:
            real[temp] = self.next_id
            self.next_id += 1
        for merge in plan.merges:
            self.parent[real.get(merge.absorbed, merge.absorbed)] = real.get(
                merge.survivor, merge.survivor
            )
        for ident, node in [*plan.new_identifiers.items(), *plan.taken.items()]:
            self.node_of[ident] = real.get(node, node)
        self.weak = (self.weak | plan.weak) - set(plan.taken)
        return plan, [None if n is None else real.get(n, n) for n in plan.record_nodes]


def claimed(ids: Sequence[Identifier]) -> list[Identifier]:
    """What a low-trust record without verification claims: all but its device ids."""
    return [i for i in ids if i[0] != "anonymous_id"]


def partition(store: Store, records: list[Record], nodes: list[int | None]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = defaultdict(set)
    for (ref, _), node in zip(records, nodes, strict=True):
        if node is not None:
            groups[store.root(node)].add(ref)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=200, deadline=None)
@given(batches())
def test_records_sharing_an_identifier_share_a_person(batch: list[Record]) -> None:
    store = Store()
    plan, nodes = store.run(batch)
    conflicted = {c.record for c in plan.conflicts}
    person = {ref: store.root(n) for (ref, _), n in zip(batch, nodes, strict=True) if n}
    for i, (ref_a, ids_a) in enumerate(batch):
        for ref_b, ids_b in batch[i + 1 :]:
            if set(ids_a) & set(ids_b) and not {ref_a, ref_b} & conflicted:
                assert person[ref_a] == person[ref_b], (ref_a, ref_b, plan.conflicts)


@settings(max_examples=200, deadline=None)
@given(st.lists(batches(), min_size=1, max_size=3))
def test_no_person_holds_two_customer_ids(batch_list: list[list[Record]]) -> None:
    store = Store()
    for batch in batch_list:
        store.run(batch)
    held: dict[int, set[str]] = defaultdict(set)
    for (kind, value), node in store.node_of.items():
        if kind == "customer_id":
            held[store.root(node)].add(value)
    assert all(len(values) <= 1 for values in held.values()), held


@settings(max_examples=200, deadline=None)
@given(batches(("loyalty_card", "email", "phone", "anonymous_id")), st.data())
def test_the_partition_does_not_depend_on_the_batch_split(
    batch: list[Record], data: st.DataObject
) -> None:
    whole = Store()
    _, nodes = whole.run(batch)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(batch)), max_size=3)))
    split = Store()
    split_nodes: list[int | None] = []
    for start, end in zip([0, *cuts], [*cuts, len(batch)], strict=True):
        if start < end:
            split_nodes += split.run(batch[start:end])[1]
    assert partition(whole, batch, nodes) == partition(split, batch, split_nodes)


@settings(max_examples=200, deadline=None)
@given(batches())
def test_every_merge_names_an_identifier_each_side_held(batch: list[Record]) -> None:
    graph = IdentityGraph({}, {})
    known: dict[Identifier, int] = {}
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while node in parent:
            node = parent[node]
        return node

    for record in batch:  # one record at a time: the state before each record is known
        plan = graph.plan([record])
        for merge in plan.merges:
            evidence: dict[str, Any] = dict(merge.evidence)
            named = {(e["kind"], e["value"]) for e in evidence["identifiers"]}
            via = (evidence["via"]["kind"], evidence["via"]["value"])
            assert via in named
            sides = {root(known[i]) for i in named if i in known}
            assert {merge.survivor, merge.absorbed} <= sides
            assert root(known[via]) in (merge.survivor, merge.absorbed)
            parent[merge.absorbed] = merge.survivor
        known.update(plan.new_identifiers)


DEVICES = [f"dev-{n}" for n in range(4)]


def devices_claiming() -> st.SearchStrategy[list[Record]]:
    """Low-trust records: a device (its own anonymous id) naming up to three identifiers."""
    named = st.sampled_from([(k, v) for k in POOLS if k != "anonymous_id" for v in POOLS[k]])
    record = st.tuples(st.sampled_from(DEVICES), st.lists(named, min_size=1, max_size=3))
    return st.lists(record, min_size=1, max_size=10).map(
        lambda rs: [(f"d{i}", [("anonymous_id", dev), *ids]) for i, (dev, ids) in enumerate(rs)]
    )


@settings(max_examples=200, deadline=None)
@given(batches(("customer_id", "loyalty_card", "email", "phone")), devices_claiming())
def test_a_device_claiming_identifiers_never_joins_anyone_who_held_them(
    seed: list[Record], attack: list[Record]
) -> None:
    store = Store()
    store.run(seed)
    before = {ident: store.root(node) for ident, node in store.node_of.items()}
    people = set(before.values())
    plan, nodes = store.run(attack, trusted=False)
    # nobody who held an identifier gains a node, loses an identifier or merges with anyone
    assert {ident: store.root(store.node_of[ident]) for ident in before} == before
    assert all(store.root(n) not in people for n in nodes if n is not None)
    assert all(m.evidence["via"]["kind"] == "anonymous_id" for m in plan.merges)
    # every identifier a device named that someone else held is recorded as its claim
    claimed_ids = {c.identifier for c in plan.claims}
    assert all(c.holder in people for c in plan.claims if c.identifier in before)
    for ref, ids in attack:
        assert all(i in claimed_ids for i in ids if i in before), ref


@settings(max_examples=200, deadline=None)
@given(batches(("loyalty_card", "email", "phone")), devices_claiming())
def test_trusted_evidence_later_gives_what_trusting_at_once_would(
    seed: list[Record], attack: list[Record]
) -> None:
    """The same records sent again by a trusted source (a CRM naming the devices) leave the
    people the trusted records alone would have made: claims change nothing for good."""
    no_ids = {"customer_id"}  # one record may bring two customer ids: limits aside here
    attack = [(ref, [i for i in ids if i[0] not in no_ids]) for ref, ids in attack]
    claimed_first = Store()
    seed_nodes = claimed_first.run(seed)[1]
    claimed_first.run(attack, trusted=False)
    nodes = seed_nodes + claimed_first.run(attack)[1]
    trusted = Store()
    trusted_nodes = trusted.run(seed)[1] + trusted.run(attack)[1]
    both = seed + attack
    assert partition(claimed_first, both, nodes) == partition(trusted, both, trusted_nodes)
    assert claimed_first.weak == set()


@settings(max_examples=200, deadline=None)
@given(devices_claiming(), batches(("customer_id", "loyalty_card", "email", "phone")))
def test_claiming_identifiers_first_never_brings_a_device_into_a_later_trusted_person(
    attack: list[Record], trusted: list[Record]
) -> None:
    """Devices claim identifiers nobody holds yet; then a trusted source brings them (without
    naming any device): no device is in a person a trusted record attached to, and every
    identifier the trusted records named is held firmly by their people."""
    store = Store()
    _, device_nodes = store.run(attack, trusted=False)
    _, nodes = store.run(trusted)
    devices = {store.root(n) for n in device_nodes if n is not None}
    assert all(store.root(n) not in devices for n in nodes if n is not None)
    named = {i for _, ids in trusted for i in ids}
    assert not named & store.weak
