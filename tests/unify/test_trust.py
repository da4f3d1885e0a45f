"""Identity verification: which identifiers of a low-trust message a hash vouches for."""

from __future__ import annotations

import hashlib
import hmac

from surmesure.unify.trust import claimed, verified

SECRET = "s3cret"
IDS = (("anonymous_id", "dev-1"), ("customer_id", "C1"), ("email", "ana@example.org"))


def mac(value: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_a_valid_hash_verifies_its_identifier_only() -> None:
    assert verified(IDS, SECRET, {"userHash": mac("C1")}) == {("customer_id", "C1")}
    assert verified(IDS, SECRET, None, {"surmesure": {"emailHash": mac("ana@example.org")}}) == {
        ("email", "ana@example.org")
    }
    both = {"userHash": mac("C1").upper(), "emailHash": mac("ana@example.org")}
    assert verified(IDS, SECRET, both) == {("customer_id", "C1"), ("email", "ana@example.org")}


def test_no_secret_a_wrong_secret_or_a_hash_of_another_id_verifies_nothing() -> None:
    assert verified(IDS, None, {"userHash": mac("C1")}) == frozenset()
    assert verified(IDS, SECRET, {"userHash": mac("C1", "guess")}) == frozenset()
    assert verified(IDS, SECRET, {"userHash": mac("C2")}) == frozenset()
    assert verified(IDS, SECRET, {"userHash": 42}) == frozenset()
    assert verified(IDS, SECRET, {"emailHash": mac("C1")}) == frozenset()  # hash of the id


def test_what_a_record_only_claims() -> None:
    assert claimed(IDS, trusted=True) == frozenset()
    assert claimed(IDS, trusted=False) == {("customer_id", "C1"), ("email", "ana@example.org")}
    assert claimed(IDS, trusted=False, vouched=frozenset({("customer_id", "C1")})) == {
        ("email", "ana@example.org")
    }
