"""CPU time of rendering one mandate PDF, the largest piece of a bulk send's own work per mandate.

    python bench/mandate_pdf.py [--renders N]

Renders N mandates of distinct companies (as a bulk send does: the legal text repeats, the parties
differ) after a warm-up, in this process, and prints the process CPU time per render with its
median over five rounds, the PDF size and the command: for names Helvetica prints (nearly every
mandate), then for names only the embedded face prints (Łukasz Nguyễn: Roboto, N / 10 renders).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from documents.mandate_pdf import render_mandate_pdf
from documents.models import CompanyParty, MandateDocumentData, Person, PlatformParty
from domain.identifiers import luhn_complete


def mandate(i: int, first_name: str = "Hélène", last_name: str = "Dupré") -> MandateDocumentData:
    siren = luhn_complete(f"{40_000_000 + i:08d}")
    return MandateDocumentData(
        mandate_number=f"{siren}_987654325_20261205_01",
        issued_on=date(2026, 12, 5),
        effective_from=date(2026, 12, 5),
        client=CompanyParty(
            name=f"Boulangerie Numéro {i} SARL", siren=siren, siret=luhn_complete(siren + "0001")
        ),
        client_representative=Person(
            first_name=first_name,
            last_name=f"{last_name}-{i}",
            birth_name="Lefèvre",
            email=f"client{i}@example.fr",
        ),
        firm=CompanyParty(
            name="Cabinet Martin Expertise", siren="552081317", address="12 rue de la Paix, Paris"
        ),
        firm_representative=Person(first_name="Paul", last_name="Martin", email="paul@cabinet.fr"),
        platform=PlatformParty(name="PA Exemple SAS", siren="987654325", matricule="0042"),
    )


def measure(label: str, data: list[MandateDocumentData], renders: int) -> None:
    """Warm-up on the first `renders`, then five rounds of `renders` each."""
    for item in data[:renders]:  # imports, width and paragraph caches
        render_mandate_pdf(item)
    rounds = []
    for r in range(1, 6):
        batch = data[r * renders : (r + 1) * renders]
        started = time.process_time()
        for item in batch:
            rendered = render_mandate_pdf(item)
        rounds.append((time.process_time() - started) / len(batch) * 1000)
    rounds_text = ", ".join(f"{ms:.2f}" for ms in rounds)
    print(f"{label}: {statistics.median(rounds):.2f} ms CPU per render (median, 5 rounds of {renders})")
    print(f"  rounds: {rounds_text} ms; {rendered.page_count} pages, {len(rendered.pdf)} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--renders", type=int, default=200, help="renders per round")
    args = parser.parse_args()
    print(f"command: python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}".rstrip())
    measure("mandate PDF, Helvetica", [mandate(i) for i in range(args.renders * 6)], args.renders)
    few = max(1, args.renders // 10)
    embedded = [mandate(i, "Łukasz", "Nguyễn") for i in range(few * 6)]
    measure("mandate PDF, embedded Roboto", embedded, few)


if __name__ == "__main__":
    main()
