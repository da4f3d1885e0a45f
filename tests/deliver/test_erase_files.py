"""Erasure reaches the files a campaign wrote: the print batch (PDF and manifest) and the call
list are rewritten without the erased people, the others stay, and the report names each file.
Before, a letter's name and street and a call's phone number stayed in the files."""

from __future__ import annotations

import csv
from pathlib import Path

from campaign_world import T0, add_people, document
from cascade_world import send_offline
from pypdf import PdfReader

from surmesure.deliver import documents
from surmesure.protect.erase import erase_person
from surmesure.store import Store

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
