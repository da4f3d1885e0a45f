"""The web visitor's proofs: a signed user or anonymous id holds exactly as signed, and any
change to it, another secret or another time makes it count for nothing."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surmesure.web.identity import (
    MAX_USER_SECONDS,
    anonymous_secret,
    key_identity_secret,
    new_anonymous,
    read_anonymous,
    read_user,
    sign_user,
    visitor,
)

NOW = 1_800_000_000.0
SECRET = key_identity_secret("server secret", "key1")
customer_ids = st.text(min_size=1, max_size=256).filter(lambda t: "\x00" not in t)


@settings(max_examples=200, deadline=None)
@given(customer_ids, st.integers(1, MAX_USER_SECONDS), st.data())
def test_a_signed_user_holds_until_it_expires_and_no_change_of_it_holds(
    customer_id: str, seconds: int, data: st.DataObject
) -> None:
    token = sign_user(SECRET, customer_id, seconds=seconds, now=NOW)
    assert read_user(SECRET, token, now=NOW) == customer_id
    assert read_user(SECRET, token, now=NOW + seconds - 0.5) == customer_id
    assert read_user(SECRET, token, now=NOW + seconds) is None  # expired
    assert read_user(key_identity_secret("server secret", "key2"), token, now=NOW) is None
    assert read_user(key_identity_secret("another secret", "key1"), token, now=NOW) is None
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[at]))
    changed = token[:at] + char + token[at + 1 :]
    found = read_user(SECRET, changed, now=NOW)
    # a changed token holds only if it still names the same customer with the same signature
    # (upper-case hex digits are the same signature)
    assert found is None or (found == customer_id and changed.lower() == token.lower())


def test_the_shop_servers_recipe_is_one_hmac() -> None:
    expiry = int(NOW) + 3600
    signed = f"C.42.{expiry}"
    by_hand = f"{signed}.{hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()}"
    assert read_user(SECRET, by_hand, now=NOW) == "C.42"  # a customer id may hold dots
    assert sign_user(SECRET, "C.42", seconds=3600, now=NOW) == by_hand
    too_long = f"C.{int(NOW) + MAX_USER_SECONDS + 1}"
    mac = hmac.new(SECRET.encode(), too_long.encode(), hashlib.sha256).hexdigest()
    assert read_user(SECRET, f"{too_long}.{mac}", now=NOW) is None
    with pytest.raises(ValueError, match="seconds"):
        sign_user(SECRET, "C", seconds=MAX_USER_SECONDS + 1)
    with pytest.raises(ValueError, match="customer_id"):
        sign_user(SECRET, "")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_no_made_up_anonymous_id_is_read(value: str) -> None:
    assert read_anonymous(anonymous_secret("server secret"), value) is None


def test_a_visitor_is_who_their_proofs_say_and_no_more() -> None:
    secret = anonymous_secret("server secret")
    anonymous_id, cookie = new_anonymous(secret)
    assert read_anonymous(anonymous_secret("another server"), cookie) is None
    kept = visitor("server secret", "key1", cookie, None)
    assert (kept.anonymous_id, kept.cookie, kept.issued, kept.customer_id) == (
        anonymous_id, cookie, False, None,
    )  # fmt: skip
    user = sign_user(SECRET, "C42", seconds=60)
    assert visitor("server secret", "key1", cookie, user).customer_id == "C42"
    assert visitor("server secret", "key2", cookie, user).customer_id is None  # another key's
    forged = visitor("server secret", "key1", anonymous_id + ".x", user)
    assert forged.issued and forged.anonymous_id != anonymous_id
    assert read_anonymous(secret, forged.cookie) == forged.anonymous_id
    assert forged.key == "c:C42" and kept.key == f"a:{anonymous_id}"
