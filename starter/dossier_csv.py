"""Dossier ids from a firm's client list as a spreadsheet exports it: comma, semicolon (French
Excel) or tab separated; UTF-8 (with or without BOM), UTF-16 ("Texte Unicode") or Windows-1252."""

from __future__ import annotations

import csv
import io
from uuid import UUID

ID_COLUMNS = ("dossier_id", "id")
SHOWN = 5  # bad values named in an error


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


def not_ids(values: list[tuple[str, str]]) -> str | None:
    """What is wrong with (where, value) pairs that should be dossier ids, if anything: the first
    few named, so that the firm finds them in its spreadsheet."""
    bad = []
    for where, value in values:
        try:
            UUID(value)
        except ValueError:
            bad.append(f"{where}: {value!r}")
    if not bad:
        return None
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return f"not dossier ids: {'; '.join(bad[:SHOWN])}{more}"


def read_dossier_ids(content: bytes) -> list[str]:
    """The non-empty values of the `dossier_id` (or `id`) column, in file order; each must be an id."""
    text = decode(content)
    header = text.splitlines()[0] if text else ""
    rows = csv.reader(io.StringIO(text), delimiter=_separator(header))
    headers = next(rows, [])
    keys = [_column_key(h) for h in headers]
    column = next((keys.index(c) for c in ID_COLUMNS if c in keys), None)
    if column is None:
        found = ", ".join(repr(h) for h in headers) or "none"
        raise DossierCsvError(f"the CSV needs a dossier_id (or id) column; its columns: {found}")
    found = [
        (f"line {rows.line_num}", value)
        for row in rows
        if len(row) > column and (value := row[column].strip())
    ]
    if problem := not_ids(found):
        raise DossierCsvError(problem)
    return [value for _, value in found]
