"""Erasure reaches the files a campaign wrote: the print batch (PDF and manifest) and the call
list are rewritten without the erased people, the others stay, and the report names each file.
A person erased while a batch is being written, or before a crashed run is settled, leaves
nothing in the file either. Before, a letter's name and street and a call's phone number
stayed in the files."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa
from campaign_world import T0, add_people, document
from cascade_world import send_offline
from pypdf import PdfReader

from surmesure.deliver import documents, outbox
from surmesure.deliver.calls import CallChannel, CallSettings
from surmesure.deliver.channel import Message
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema

STREETS = {1: "11 rue Albertine", 2: "22 quai Bérénice", 3: "33 cours Clotilde"}
NAMES = {i: f"Surname{i}x" for i in range(1, 6)}


def _pdf_text(folder: Path) -> str:
    return "\n".join(
        page.extract_text() for pdf in folder.glob("*.pdf") for page in PdfReader(pdf).pages
    )


def _text(folder: Path, pattern: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in folder.glob(pattern))


def test_erasure_rewrites_the_print_batch_and_the_call_list(store: Store, tmp_path: Path) -> None:
    extra = {i: {"last_name": NAMES[i]} for i in NAMES}
    for i, street in STREETS.items():
        extra[i] |= {"street": street, "postcode": f"6900{i}", "city": "Lyon"}
    ids = add_people(store, tmp_path, 5, no_email=set(NAMES), phones={4, 5}, extra=extra)
    call = {
        "text": "Appeler {{ person.last_name }} pour la carte fidélité.",
        "fields": {"last_name": {"trait": "last_name", "fallback": ""}},
    }
    doc = document(
        channels={"paper": {"text": "Nos soldes commencent."}, "phone": call},
        policy={"order": ["paper", "phone"]},
    )
    documents.save(store, documents.parse(doc), T0)
    report = send_offline(store, tmp_path, T0)
    assert report.sent is not None and report.sent.counts == {"sent": 5}
    prints, calls = tmp_path / "print", tmp_path / "calls"
    assert all(NAMES[i] in _pdf_text(prints) for i in (1, 2, 3))
    assert STREETS[2] in _pdf_text(prints) and NAMES[4] in _text(calls, "*.csv")

    letter = erase_person(store, f"customer_id:C{2}", confirmed=True)
    phoned = erase_person(store, f"customer_id:C{4}", confirmed=True)

    (pdf,) = prints.glob("*.pdf")
    (call_list,) = calls.glob("*.csv")
    assert letter.person_id == ids[2] and letter.files == {str(pdf.resolve()): "rewritten"}
    assert phoned.files == {str(call_list.resolve()): "rewritten"}
    text = _pdf_text(prints)
    assert NAMES[2] not in text and STREETS[2] not in text
    assert all(NAMES[i] in text and STREETS[i] in text for i in (1, 3))
    assert len(PdfReader(pdf).pages) == 2
    with pdf.with_suffix(".csv").open() as manifest:
        rows = list(csv.DictReader(manifest))
    assert [r["person_id"] for r in rows] == [str(ids[1]), str(ids[3])]
    assert [r["first_page"] for r in rows] == ["1", "2"]
    assert "+33612340004" not in call_list.read_text() and NAMES[4] not in call_list.read_text()
    assert NAMES[5] in call_list.read_text() and call_list.stat().st_mode & 0o077 == 0
    # the last person of the call list: nobody is left in it, the file goes
    last = erase_person(store, f"customer_id:C{5}", confirmed=True)
    assert last.files == {str(call_list.resolve()): "removed"} and not call_list.exists()
    assert "files" in last.to_dict()


def _sending(store: Store, person_id: int | None, step: int) -> str:
    """A call task of campaign ``spring`` being sent (``None``: its person erased since)."""
    message_id = f"call-{step}"
    row = {
        "message_id": message_id,
        "campaign": "spring",
        "version": 1,
        "person_id": person_id,
        "channel": "phone",
        "step": step,
        "status": "sending",
        "attempts": 1,
        "planned_at": T0,
        "updated_at": T0,
    }
    with store.begin() as conn:
        conn.execute(schema.messages.insert(), [row])
    return message_id


def test_a_person_erased_mid_send_or_after_a_crash_leaves_no_trace_in_the_file(
    duckdb_store: Store, tmp_path: Path
) -> None:
    store = duckdb_store
    gone, kept, later = _sending(store, None, 0), _sending(store, 41, 1), _sending(store, 42, 2)
    calls = CallChannel(CallSettings(folder=tmp_path / "calls"))
    deliveries = calls.send(
        [
            Message(gone, "phone", "+33600000001", "Appeler Gone", person_id=40),
            Message(kept, "phone", "+33600000002", "Appeler Kept", person_id=41),
            Message(later, "phone", "+33600000003", "Appeler Later", person_id=42),
        ]
    )
    assert calls.last_batch is not None
    # the run is killed once the list is written: the journal names each message's file
    with outbox.journal_of(tmp_path / "outbox", "spring") as journal:
        for delivery in deliveries:
            journal.write(delivery.message_id, delivery.file)
    assert outbox.settle(store, "spring", journal, T0) == {"sent": 3, "planned": 0}
    text = calls.last_batch.read_text()
    assert "+33600000001" not in text and "Gone" not in text and "Kept" in text
    f = schema.message_files
    with store.connect() as conn:
        rows = conn.execute(sa.select(f.c.message_id, f.c.person_id, f.c.path)).all()
    assert sorted((r[0], r[1]) for r in rows) == [(kept, 41), (later, 42)]
    assert {r[2] for r in rows} == {str(calls.last_batch)}
