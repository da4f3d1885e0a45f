"""The identity graph as a pure, incremental union-find.

Records arrive in batches, each with a few normalized identifiers. :class:`IdentityGraph` is
loaded with what the store already knows about those identifiers (which node holds each, the
current person of each node, the identifiers each person holds under a limit, and the pairs a
user has unmerged), then plans the batch: which new nodes to create, which identifiers to attach
where, which people to merge (with the evidence), and the node and person of every record.
Nothing here touches the store; :mod:`surmesure.unify.resolver` loads and applies.

Rules, in order:
1. a record attaches to the node of its highest-priority *vouched* known identifier
   (customer_id > loyalty_card > email > phone > anonymous_id); with none known, to a new node;
2. every other person the record's vouched identifiers point to is merged into that one, unless
   the merge would give a person two identifiers of a limited kind (two customer ids) or a user
   has unmerged those two people: then the identifiers stay where they are and the conflict is
   reported;
3. of two merged people, the older (smaller id) survives;
4. unknown identifiers of the record attach to its node, unless that would break a limit
   (the identifier then gets a node of its own, so it is not lost).

Trust (:mod:`surmesure.unify.trust`): a record may name identifiers it only *claims* (a public
web page's ``identify`` naming an e-mail). A claimed identifier never links:
5. held by another person, it stays there and the claim is reported (who claimed what, held by
   whom); the record's person is not merged;
6. held by nobody, it attaches to the record's node as a *weak* holding (a new identity is not
   a hijack), but a weak holding never anchors a vouched record: a later vouched record naming
   it takes it over (the claimant keeps a claim on it), so whoever claims an address before its
   owner arrives does not become that owner;
7. a record that vouches for nothing (a low-trust record without a device id) attaches to the
   holder of its first known identifier, as a fact about it, and links nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from surmesure.domain.identity import LIMITS, PRIORITY

Identifier = tuple[str, str]


@dataclass(frozen=True)
class Merge:
    survivor: int
    absorbed: int
    evidence: dict[str, object]


@dataclass(frozen=True)
class Conflict:
    record: str
    kept: int
    refused: int
    reason: str


@dataclass(frozen=True)
class Claim:
    """``claimant`` (the node a record attached to) claims ``identifier``, held by the person
    ``holder``; ``displaced``: the claimant held it weakly until a vouched record took it."""

    record: str
    claimant: int
    identifier: Identifier
    holder: int
    displaced: bool = False


@dataclass
class Plan:
    """What a batch changes. Node ids below zero are new; the caller assigns real ids.
    ``weak``: new identifiers held by claim only; ``taken``: weak holdings a vouched record
    moved to its node, or confirmed where they were (identifier -> node now); ``owned``: per
    record, whether it attached through an identifier it vouches for or to a new node (not as
    a claim-only fact about someone who already held its identifiers)."""

    new_nodes: list[int] = field(default_factory=list)
    new_identifiers: dict[Identifier, int] = field(default_factory=dict)
    merges: list[Merge] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    record_nodes: list[int | None] = field(default_factory=list)
    weak: set[Identifier] = field(default_factory=set)
    taken: dict[Identifier, int] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    owned: list[bool] = field(default_factory=list)


class IdentityGraph:
    """Union-find over identity nodes, seeded with the store's state for one batch."""

    def __init__(
        self,
        known: Mapping[Identifier, int],
        roots: Mapping[int, int],
        limited: Mapping[int, Iterable[Identifier]] = (),  # type: ignore[assignment]
        blocks: Iterable[tuple[int, int]] = (),
        weak: Iterable[Identifier] = (),
    ) -> None:
        """``known``: identifier -> node; ``roots``: node -> its person now; ``limited``:
        person -> identifiers of limited kinds held; ``blocks``: unmerged pairs of nodes;
        ``weak``: known identifiers held by claim only."""
        self._node_of: dict[Identifier, int] = dict(known)
        self._weak: set[Identifier] = set(weak)
        self._parent: dict[int, int] = {}
        for node, root in roots.items():
            self._parent.setdefault(root, root)
            if node != root:
                self._parent[node] = root
        self._limited: dict[int, set[Identifier]] = {
            person: set(ids) for person, ids in dict(limited).items()
        }
        self._blocks: list[tuple[int, int]] = list(blocks)
        for a, b in self._blocks:
            self._parent.setdefault(a, a)
            self._parent.setdefault(b, b)
        self._next_temp = -1

    # -- union-find ------------------------------------------------------------------------

    def find(self, node: int) -> int:
        parent = self._parent.setdefault(node, node)
        if parent == node:
            return node
        root = self.find(parent)
        self._parent[node] = root
        return root

    def _new_node(self, plan: Plan) -> int:
        node = self._next_temp
        self._next_temp -= 1
        self._parent[node] = node
        plan.new_nodes.append(node)
        return node

    @staticmethod
    def _older(a: int, b: int) -> tuple[int, int]:
        """(survivor, absorbed): stored nodes outlive new ones, smaller ids outlive larger."""
        key_a = (a < 0, abs(a))
        key_b = (b < 0, abs(b))
        return (a, b) if key_a <= key_b else (b, a)

    def _blocked(self, a: int, b: int) -> bool:
        for x, y in self._blocks:
            rx, ry = self.find(x), self.find(y)
            if {rx, ry} == {a, b}:
                return True
        return False

    def _limit_clash(self, a: int, b: int) -> str | None:
        held_a = self._limited.get(a, set())
        held_b = self._limited.get(b, set())
        for kind, limit in LIMITS.items():
            values = {v for k, v in held_a | held_b if k == kind}
            if len(values) > limit:
                return f"both hold a {kind} ({', '.join(sorted(values))})"
        return None

    def _union(self, survivor: int, absorbed: int) -> None:
        self._parent[absorbed] = survivor
        moved = self._limited.pop(absorbed, set())
        if moved:
            self._limited.setdefault(survivor, set()).update(moved)

    # -- planning --------------------------------------------------------------------------

    def plan(
        self,
        records: Sequence[tuple[str, Sequence[Identifier]]],
        claimed: Sequence[Collection[Identifier]] | None = None,
    ) -> Plan:
        """Plan a batch of ``(record reference, identifiers)``; identifiers are normalized.
        ``claimed[i]``: the identifiers record ``i`` only claims (none when not given).
        A record with no identifier gets ``None`` (an anonymous record)."""
        plan = Plan()
        for index, (ref, raw_ids) in enumerate(records):
            claims = frozenset(claimed[index]) if claimed is not None else frozenset()
            plan.record_nodes.append(self._plan_record(plan, ref, raw_ids, claims))
        return plan

    def _plan_record(
        self, plan: Plan, ref: str, raw_ids: Sequence[Identifier], claimed: frozenset[Identifier]
    ) -> int | None:
        ids = sorted(set(raw_ids), key=lambda i: (PRIORITY.get(i[0], 99), i[1]))
        if not ids:
            plan.owned.append(False)
            return None
        vouched = [i for i in ids if i not in claimed]
        strong = [i for i in vouched if i in self._node_of and i not in self._weak]
        held = [i for i in ids if i in self._node_of]
        if strong:
            anchor_node = self._node_of[strong[0]]
        elif vouched or not held:
            anchor_node = self._new_node(plan)
        else:  # a fact about identifiers someone holds: attach to that holder, link nothing
            anchor_node = self._node_of[held[0]]
        plan.owned.append(bool(vouched) or not held)
        for ident in strong[1:]:
            self._link(plan, ref, anchor_node, self._node_of[ident], ident, ids)
        for ident in vouched:
            if ident in self._weak:
                self._take(plan, ref, anchor_node, ident)
        for ident in ids:
            if ident in self._node_of:
                holder = self.find(self._node_of[ident])
                # a record that vouches for nothing has no claimant of its own to name
                if ident in claimed and vouched and holder != self.find(anchor_node):
                    plan.claims.append(Claim(ref, anchor_node, ident, holder))
                continue
            target = anchor_node
            if ident[0] in LIMITS:
                root = self.find(anchor_node)
                held_values = {v for k, v in self._limited.get(root, set()) if k == ident[0]}
                if len(held_values | {ident[1]}) > LIMITS[ident[0]]:
                    target = self._new_node(plan)
                    plan.conflicts.append(
                        Conflict(
                            ref, root, target, f"{ident[0]} limit: already holds {held_values}"
                        )
                    )
            self._node_of[ident] = target
            plan.new_identifiers[ident] = target
            if ident in claimed:
                self._weak.add(ident)
                plan.weak.add(ident)
            if ident[0] in LIMITS:
                self._limited.setdefault(self.find(target), set()).add(ident)
        return anchor_node

    def _take(self, plan: Plan, ref: str, anchor: int, ident: Identifier) -> None:
        """A vouched record names an identifier held by claim only: it becomes the record's
        (a firm holding of the anchor's person); the weak holder keeps a claim on it."""
        node = self._node_of[ident]
        holder, person = self.find(node), self.find(anchor)
        if holder == person:  # vouched for where it is: a firm holding now
            self._weak.discard(ident)
            if ident in plan.new_identifiers:
                plan.weak.discard(ident)
            else:
                plan.taken[ident] = node
            return
        target = anchor
        if ident[0] in LIMITS:
            held = {v for k, v in self._limited.get(person, set()) if k == ident[0]}
            if len(held | {ident[1]}) > LIMITS[ident[0]]:  # as rule 4: a node of its own
                target = self._new_node(plan)
                plan.conflicts.append(
                    Conflict(ref, person, target, f"{ident[0]} limit: already holds {held}")
                )
            self._limited.get(holder, set()).discard(ident)
            self._limited.setdefault(self.find(target), set()).add(ident)
        self._weak.discard(ident)
        plan.weak.discard(ident)
        self._node_of[ident] = target
        if ident in plan.new_identifiers:
            plan.new_identifiers[ident] = target
        else:
            plan.taken[ident] = target
        plan.claims.append(Claim(ref, holder, ident, self.find(target), displaced=True))

    def _link(
        self,
        plan: Plan,
        ref: str,
        anchor: int,
        node: int,
        via: Identifier,
        ids: Sequence[Identifier],
    ) -> None:
        a, b = self.find(anchor), self.find(node)
        if a == b:
            return
        reason = self._limit_clash(a, b)
        if reason is None and self._blocked(a, b):
            reason = "a user unmerged these people"
        if reason is not None:
            plan.conflicts.append(Conflict(ref, a, b, reason))
            return
        survivor, absorbed = self._older(a, b)
        self._union(survivor, absorbed)
        plan.merges.append(
            Merge(
                survivor=survivor,
                absorbed=absorbed,
                evidence={
                    "record": ref,
                    "via": {"kind": via[0], "value": via[1]},
                    "identifiers": [{"kind": k, "value": v} for k, v in ids],
                },
            )
        )
