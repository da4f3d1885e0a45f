"""What comes back from the SMS gateway, end to end through a real Kannel and the API: delivery
reports settle the message, and a STOP (or ARRÊT) typed on the phone opts its person out of SMS
marketing; a forged report, a reply without the gateway's key, another word or a number nobody
holds records nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from api_helpers import serving
from import_helpers import write_file
from kannel_box import PASSWORD, USER, kannel, sendsms_url

from surmesure.collect.importer import import_file
from surmesure.deliver import replies
from surmesure.deliver.channel import Message
from surmesure.deliver.channels import callbacks
from surmesure.deliver.reports import status_of
from surmesure.deliver.sms import INBOUND_PATH, REPORTS_PATH, SmsChannel, SmsSettings, inbound_key
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema
from surmesure.unify.profile import find_person

SECRET = "a-test-secret-of-some-length"
BASE = 18510
ANA, BO = "+33612345678", "+33698765432"
LATER = datetime(2100, 1, 1)


def _world(store: Store, folder: Path) -> tuple[int, int]:
    rows = [
        {"customer_id": "C-ANA", "phone": "06 12 34 56 78", "first_name": "Ana"},
        {"customer_id": "C-BO", "phone": BO, "first_name": "Bo"},
    ]
    import_file(store, "customers", write_file(folder, "crm", "csv", rows), source="crm")
    with store.connect() as conn:
        return find_person(conn, "customer_id:C-ANA").person_id, find_person(
            conn, "customer_id:C-BO"
        ).person_id


def _until(check: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _sms_opt_outs(store: Store) -> set[int]:
    with store.connect() as conn:
        return refused_ids(conn, "marketing", "sms", LATER)


def test_reports_settle_messages_and_stop_opts_out(store: Store, tmp_path: Path) -> None:
    ana, bo = _world(store, tmp_path)
    with serving(store, secret_key=SECRET) as (url, app):
        # Kannel calls back the addresses `campaign gateways` prints
        called = callbacks(app.state.settings.model_copy(update={"public_url": url}))
        with kannel(tmp_path, BASE, called["sms_inbound"]) as phone:
            settings = SmsSettings(
                url=sendsms_url(BASE),
                username=USER,
                password=PASSWORD,
                reports_url=called["sms_reports_url"],
                sender="MAISON",
            )
            channel = SmsChannel(settings, secret=SECRET)
            sent = channel.send([Message("msg-ana-1", "sms", ANA, "Offre -20%", person_id=ana)])
            channel.close()
            assert sent[0].outcome == "sent", sent[0].detail

            def delivered() -> bool:
                with store.connect() as conn:
                    return status_of(conn, "msg-ana-1") == "delivered"

            assert _until(delivered)
            phone.send(BO, "38100", "Bonjour")  # not a stop word
            phone.send("+33600000000", "38100", "STOP")  # nobody holds it
            phone.send(ANA, "38100", "Stop SMS")
            assert _until(lambda: _sms_opt_outs(store) == {ana})
            ucs2 = "".join(f"%{b:02X}" for b in "ARRÊT".encode("utf-16-be"))
            phone.send(BO, "38100", ucs2, kind="ucs2")  # Ê is not GSM-7: the phone sends UCS-2
            assert _until(lambda: _sms_opt_outs(store) == {ana, bo})
    with store.connect() as conn:
        statuses = conn.execute(
            sa.select(schema.delivery_reports.c.status).where(
                schema.delivery_reports.c.message_id == "msg-ana-1"
            )
        ).all()
        consents = conn.execute(
            sa.select(schema.consents.c.source, schema.consents.c.evidence)
        ).all()
    assert {s[0] for s in statuses} <= {"accepted", "delivered"} and len(statuses) >= 1
    assert [c[0] for c in consents] == [replies.SOURCE] * 2
    assert all(str(c[1]).startswith("sms:") and ANA not in str(c[1]) for c in consents)
    assert refused_ids_email(store) == set()  # an SMS STOP says nothing of e-mail


def refused_ids_email(store: Store) -> set[int]:
    with store.connect() as conn:
        return refused_ids(conn, "marketing", "email", LATER)


def test_forged_reports_and_keyless_replies_record_nothing(store: Store, tmp_path: Path) -> None:
    _world(store, tmp_path)
    with serving(store, secret_key=SECRET) as (url, _app):
        report = {"id": "m1", "sig": "0" * 32, "status": "1"}
        stop = {"key": "x", "from": ANA, "text": "STOP"}
        for odd in ("0" * 32, "é", "\u00e9" * 40):  # non-ASCII is refused like any wrong one
            forged = httpx.get(f"{url}{REPORTS_PATH}", params=report | {"sig": odd})
            assert forged.status_code == 404
            keyless = httpx.get(f"{url}{INBOUND_PATH}", params=stop | {"key": odd})
            assert keyless.status_code == 404
        key = inbound_key(SECRET)
        bad_number = httpx.get(
            f"{url}{INBOUND_PATH}", params={"key": key, "from": "not a number", "text": "STOP"}
        )
        assert bad_number.status_code == 200
        assert bad_number.headers["x-outcome"] == "unknown_number"
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.consents)).scalar() == 0
        reports = sa.select(sa.func.count()).select_from(schema.delivery_reports)
        assert conn.execute(reports).scalar() == 0


def test_stop_words() -> None:
    for text in ("STOP", "stop", "Stop SMS", "ARRET", "Arrêt", "arrêt sms", " STOP. ", "Stop!"):
        assert replies.is_stop(text), text
    for text in ("", "Bonjour", "Je ne veux pas arrêter", "STOPPER", "top"):
        assert not replies.is_stop(text), text
