"""Paper: one PDF per batch, letters sorted by postcode with the address in the envelope's
window, and a manifest the printer can follow; an address the post would return fails."""

from __future__ import annotations

import csv
import re
import zlib
from pathlib import Path

import pytest

from surmesure.deliver.channel import Message
from surmesure.deliver.paper import PaperChannel, PaperSettings, postcode_of


def pdf_pages(path: Path) -> int:
    """The page count a PDF reader reads: the /Count of the page tree (in a compressed object
    stream or not)."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    texts = [data]
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            texts.append(zlib.decompress(stream.group(1)))
        except zlib.error:
            continue
    counts = [
        int(m.group(1))
        for text in texts
        for m in re.finditer(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", text, re.S)
    ]
    counts += [
        int(m.group(1))
        for text in texts
        for m in re.finditer(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", text, re.S)
    ]
    assert counts, "no page tree found"
    return max(counts)


def letter(n: int, address: str, text: str = "Chère cliente,\n\nVoici nos offres.") -> Message:
    return Message(f"p{n}", "paper", address, text, person_id=n)


def test_a_batch_is_one_pdf_sorted_by_postcode_with_its_manifest(tmp_path: Path) -> None:
    long_text = "\n\n".join(f"Paragraphe {k}. " + "Une offre pour vous. " * 30 for k in range(12))
    messages = [
        letter(1, "Mme Ana Martin\n12 rue des Lilas\n75001 PARIS"),
        letter(2, "M. Bo Durand\n3 quai du Port\n13002 MARSEILLE", long_text),
        letter(3, "Mme Chloé Petit\nsans adresse postale"),
        letter(4, "A\nB\nC\nD\nE\nF\n69002 LYON"),
        letter(5, "M. Dan Leroy\n8 place Bellecour\n69002 LYON"),
    ]
    channel = PaperChannel(PaperSettings(folder=tmp_path, return_address="Maison, BP 1, Lyon"))
    results = channel.send(messages)
    channel.close()
    assert [r.outcome for r in results] == ["sent", "sent", "failed", "failed", "sent"]
    assert results[2].detail == "no postcode in the address"
    assert "7 address lines" in (results[3].detail or "")
    assert results[1].units >= 2 and results[0].units == 1 and results[4].units == 1
    [pdf] = tmp_path.glob("*.pdf")
    [manifest] = tmp_path.glob("*.csv")
    assert pdf.stem == manifest.stem
    assert pdf_pages(pdf) == results[0].units + results[1].units + results[4].units
    with manifest.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["message_id"] for r in rows] == ["p2", "p5", "p1"]  # 13002, 69002, 75001
    assert [r["postcode"] for r in rows] == ["13002", "69002", "75001"]
    assert [int(r["first_page"]) for r in rows] == [1, 1 + results[1].units, 2 + results[1].units]
    assert [r["person_id"] for r in rows] == ["2", "5", "1"]
    assert "Martin" not in manifest.read_text()  # no name or address in the manifest
    assert results[4].provider_id == f"{pdf.stem}#2"


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("12 rue X\n75001 PARIS", "75001"),
        ("12 rue X\n75001 PARIS CEDEX 01\nFRANCE", "75001"),
        ("10 Downing Street\nLondon\nSW1A 2AA", "SW1A 2AA"),
        ("Rue de la Loi 16\n1000 Bruxelles", "1000"),
        ("nowhere", None),
    ],
)
def test_postcodes(address: str, code: str | None) -> None:
    assert postcode_of(address) == code


def test_settings_from_a_url(tmp_path: Path) -> None:
    s = PaperSettings.from_url(f"paper://{tmp_path}/print?window=right&return_address=Maison")
    assert (s.folder, s.window, s.return_address) == (tmp_path / "print", "right", "Maison")
    assert "left: 110.0mm" in s.css()
