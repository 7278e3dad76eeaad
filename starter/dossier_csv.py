"""Dossier ids from a firm's client list as a spreadsheet exports it: comma, semicolon (French
Excel) or tab separated; UTF-8 (with or without BOM), UTF-16 ("Texte Unicode") or Windows-1252."""

from __future__ import annotations

import csv
import io

ID_COLUMNS = ("dossier_id", "id")


class DossierCsvError(ValueError):
    """The file cannot give dossier ids; the message says why and what was found."""


def decode(content: bytes) -> str:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return content.decode("utf-16")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's "CSV" on a French Windows; its five unassigned bytes cannot be in an id anyway.
        return content.decode("cp1252", errors="replace")


def _column_key(header: str) -> str:
    # "Dossier ID", " dossier_id", "DOSSIER-ID" all name the same column.
    return header.strip().strip('"').lower().replace(" ", "_").replace("-", "_")


def _separator(header: str) -> str:
    """The separator the header uses most, outside quoted names ("Nom, prénom";dossier_id)."""
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    return max(";,\t", key=unquoted.count) if unquoted else ","


def read_dossier_ids(content: bytes) -> list[str]:
    """The non-empty values of the `dossier_id` (or `id`) column, in file order."""
    text = decode(content)
    header = text.splitlines()[0] if text else ""
    rows = csv.reader(io.StringIO(text), delimiter=_separator(header))
    headers = next(rows, [])
    keys = [_column_key(h) for h in headers]
    column = next((keys.index(c) for c in ID_COLUMNS if c in keys), None)
    if column is None:
        found = ", ".join(repr(h) for h in headers) or "none"
        raise DossierCsvError(f"the CSV needs a dossier_id (or id) column; its columns: {found}")
    return [value for row in rows if len(row) > column and (value := row[column].strip())]
