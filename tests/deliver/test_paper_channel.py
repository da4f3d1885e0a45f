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


def test_chunks_laid_out_in_two_processes_join_into_one_pdf(tmp_path: Path) -> None:
    long_text = "\n\n".join(f"Paragraphe {k}. " + "Une offre pour vous. " * 30 for k in range(12))
    messages = [
        letter(
            n,
            f"Client {n}\n{n} rue des Lilas\n{69009 - n:05d} LYON",
            long_text if n == 3 else "Bonjour.",
        )
        for n in range(7)
    ]
    settings = PaperSettings(folder=tmp_path, chunk=2, workers=2)
    results = PaperChannel(settings).send(messages)
    assert {r.outcome for r in results} == {"sent"}
    assert results[3].units >= 2
    [pdf] = tmp_path.glob("*.pdf")
    [manifest] = tmp_path.glob("*.csv")
    assert pdf_pages(pdf) == sum(r.units for r in results)
    with manifest.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["message_id"] for r in rows] == [f"p{n}" for n in range(6, -1, -1)]  # by postcode
    firsts = [int(r["first_page"]) for r in rows]
    pages = [int(r["pages"]) for r in rows]
    # each letter starts where the one before it ends, across the chunks' seams
    assert firsts == [1 + sum(pages[:k]) for k in range(len(rows))]
    assert pages == [r.units for r in sorted(results, key=lambda r: r.message_id, reverse=True)]


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


def test_a_letter_reads_back_from_the_joined_pdf_and_keeps_its_own_page_boxes(
    tmp_path: Path,
) -> None:
    """Letters laid out in chunks by two processes: the PDF has the manifest's pages, each
    letter's words are on its first page, and a letter whose template numbers its pages in a
    margin box (``@page { @bottom-center }``) still gets its numbers (counted in its chunk:
    the last letter is alone in the last chunk)."""
    from pypdf import PdfReader

    numbered = (
        "<style>@page { @bottom-center { content: 'Feuillet ' counter(page) } }</style>"
        "<p>Votre relevé de points.</p>"
    )
    messages = [
        letter(n, f"Client {n}\n{n} rue des Lilas\n{69001 + n:05d} LYON", f"Bonjour numéro {n}.")
        for n in range(5)
    ]
    messages[4] = Message("p4", "paper", messages[4].to, "", html=numbered, person_id=4)
    results = PaperChannel(PaperSettings(folder=tmp_path, chunk=2, workers=2)).send(messages)
    assert [r.outcome for r in results] == ["sent"] * 5
    [pdf] = tmp_path.glob("*.pdf")
    with pdf.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    reader = PdfReader(pdf)
    assert len(reader.pages) == sum(int(r["pages"]) for r in rows) == 5
    for row in rows:
        text = reader.pages[int(row["first_page"]) - 1].extract_text()
        assert f"Client {row['person_id']}" in text
        if row["person_id"] != "4":
            assert f"Bonjour numéro {row['person_id']}." in text
            assert "Feuillet" not in text
    last = reader.pages[int(rows[-1]["first_page"]) - 1].extract_text()
    assert "Votre relevé de points." in last and "Feuillet 1" in last
