"""A campaign over e-mail and SMS at once: each person reached on the first channel of the
policy they can be reached on and have not refused, through a real SMTP server and a real
Kannel (bearerbox, smsbox and the fake SMSC); ``campaign status`` counts each channel and
what its SMS segments cost."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document, email_of, refuse
from kannel_box import PASSWORD, USER, kannel, sendsms_url
from smtp_sink import Sink, start
from test_campaign_send import _channel, _free_port

from surmesure.deliver import documents, service
from surmesure.deliver.reports import record_report
from surmesure.deliver.sms import SmsChannel, SmsSettings
from surmesure.store import Store, schema

KANNEL_BASE = 18430  # .. 18433


def test_email_and_sms_in_one_campaign(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 6, no_email={4, 5}, phones={4, 5, 6})
    refuse(store, ids[6], "email")  # has both: goes by SMS
    costs = {"email": 0.001, "sms": 0.05}
    channels = document()["channels"]
    channels["sms"]["sender"] = "MAISON"  # Kannel refuses a text without a sender id
    documents.save(store, documents.parse(document(costs=costs, channels=channels)), T0)
    sink, port = Sink(), _free_port()
    controller = start(port, sink)
    settings = SmsSettings(url=sendsms_url(KANNEL_BASE), username=USER, password=PASSWORD)
    try:
        with kannel(tmp_path, KANNEL_BASE) as phone:
            sms, email = SmsChannel(settings), _channel(port)
            report = service.send(
                store, "spring", T0, channels={"email": email, "sms": sms}, folder=tmp_path
            )
            sms.close()
            email.close()
            phone.wait_for(3)
            texts = phone.received()
    finally:
        controller.stop()
    assert report.sent is not None and report.sent.counts == {"sent": 6}
    assert sorted(m["To"] for m in sink.messages()) == [email_of(1), email_of(2), email_of(3)]
    assert sorted(to for _, to, _, _ in texts) == ["+33612340004", "+33612340005", "+33612340006"]
    assert {payload for _, _, _, payload in texts} == {"-20% this week. STOP 36180"}
    assert {sender for sender, _, _, _ in texts} == {"MAISON"}
    status = service.status(store, "spring")
    assert status["by_channel"] == {"email": {"sent": 3}, "sms": {"sent": 3}}
    assert status["cost"] == round(3 * 0.001 + 3 * 0.05, 4)
    assert status["reports"] == {}
    m = schema.messages
    with store.connect() as conn:
        sent = conn.execute(sa.select(m.c.message_id).where(m.c.channel == "sms")).scalars().all()
    record_report(store, sent[0], "sms", "accepted", T0)
    record_report(store, sent[0], "sms", "delivered", T0 + HOUR)  # the latest counts
    record_report(store, sent[1], "sms", "failed", T0)
    assert service.status(store, "spring")["reports"] == {"delivered": 1, "failed": 1}
