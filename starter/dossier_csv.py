"""Dossier ids (or, in a firm's own export without them, SIRETs) from a client list as a spreadsheet
exports it: comma, semicolon (French Excel) or tab separated; any line ending (CR alone: Excel for
Mac); UTF-8 (with or without BOM), UTF-16 ("Texte Unicode", with or without BOM) or Windows-1252;
blank lines, Excel's `sep=;` line or a title above the header; the column named in English or French;
or ids alone, one per line."""

from __future__ import annotations

import _csv
import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

# Header names of the id column once normalised (_column_key), in order of preference.
ID_COLUMNS = (
    "dossier_id",
    "id_dossier",
    "id_du_dossier",
    "identifiant_dossier",
    "identifiant_du_dossier",
    "id",
)
# The SIRET column of a firm's own client list (its accounting software's export), when it has no ids.
SIRET_COLUMNS = (
    "siret",
    "n°_siret",
    "no_siret",
    "num_siret",
    "numero_siret",
    "siret_client",
    "siret_du_client",
)
SEPARATORS = (";", ",", "\t")  # ties go to the first: French Excel's
HEADER_ROWS = 10  # non-blank rows in which the header is looked for (below a title, say)
SAMPLE_ROWS = 50  # rows that choose the separator
SHOWN = 5  # bad values or lines named in an error
# The API's own parser (pydantic, JSON mode): a form it would refuse is refused here, before sending.
_API_UUID = TypeAdapter(UUID)


class DossierCsvError(ValueError):
    """The file cannot give dossier ids; the message says why and what was found."""


def canonical_uuid(value: str) -> str | None:
    """`value` as the API reads it, in canonical form (lower case, hyphenated), or None if it
    refuses it: so that `{ABC...}` and `abc...` are one dossier when counting and deduplicating."""
    try:
        return str(_API_UUID.validate_json(json.dumps(value)))
    except ValidationError:
        return None


def canonical_siret(value: str) -> str | None:
    """14 digits once spaces are taken out (`732 829 320 00074`), or None; the API judges the rest."""
    digits = "".join(value.split())
    return digits if len(digits) == 14 and digits.isascii() and digits.isdigit() else None


@dataclass(frozen=True)
class ListColumn:
    """A column the CLI reads from a client list: its header names, and its values' canonical form."""

    what: str  # as the errors name it
    names: tuple[str, ...]
    canonical: Callable[[str], str | None]


DOSSIER_ID = ListColumn("dossier_id", ID_COLUMNS, canonical_uuid)
SIRET = ListColumn("siret", SIRET_COLUMNS, canonical_siret)


def canonical_ids(values: list[tuple[str, str]], column: ListColumn = DOSSIER_ID) -> list[str]:
    """The canonical ids of (where, value) pairs; DossierCsvError naming the first few bad ones, so
    that the firm finds them in its spreadsheet."""
    ids, bad = [], []
    for where, value in values:
        if (canonical := column.canonical(value)) is None:
            bad.append(f"{where}: {value!r}")
        else:
            ids.append(canonical)
    if bad:
        kind = "dossier ids" if column is DOSSIER_ID else "SIRETs (14 digits)"
        raise DossierCsvError(f"not {kind}: {_first(bad, '; ')}")
    return ids


def _first(items: list[str], separator: str) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return separator.join(items[:SHOWN]) + more


def decode(content: bytes) -> str:
    if content.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):  # a zip (.xlsx, .ods), OLE2 (.xls)
        raise DossierCsvError(
            "this is an Excel workbook, not a CSV: save it as CSV (File > Save As > CSV UTF-8)"
            " and give that file"
        )
    try:
        if content.startswith((b"\xff\xfe", b"\xfe\xff")):
            return content.decode("utf-16")
        if b"\x00" in content:
            return content.decode(_utf16_without_bom(content))
    except UnicodeDecodeError as error:
        raise DossierCsvError(f"the file is neither UTF-8, UTF-16 nor Windows-1252 text ({error})") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's "CSV" on a French Windows; its five unassigned bytes cannot be in an id anyway.
        return content.decode("cp1252", errors="replace")


def _utf16_without_bom(content: bytes) -> str:
    # Text never holds NUL bytes, except UTF-16's for ASCII characters: every other byte.
    sample = content[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > len(sample) // 4 and odd > even:
        return "utf-16-le"
    if even > len(sample) // 4:
        return "utf-16-be"
    raise DossierCsvError("the file holds binary data (NUL bytes): it is not a CSV")


def _column_key(header: str) -> str:
    # "Dossier ID", "Id dossier", "ID\u00a0dossier", "Identifiant du dossier", "DOSSIER-ID": the
    # same column, whatever the case, accents, non-breaking spaces or separators.
    plain = "".join(c for c in unicodedata.normalize("NFKD", header) if not unicodedata.combining(c))
    return "_".join(re.split(r"[\s_\-]+", plain.strip().strip('"').strip().lower()))


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


@dataclass(frozen=True)
class _Layout:
    separator: str
    header_index: int  # records before the header's (blank lines, `sep=;`, a title)
    header: list[str]
    column: int
    score: tuple[int, int, int]


def _reader(text: str, separator: str) -> _csv.Reader:
    # newline="": the csv module sees every line ending itself (\r alone, quoted line breaks).
    return csv.reader(io.StringIO(text, newline=""), delimiter=separator)


def _layout(text: str, separator: str, column: ListColumn) -> _Layout | None:
    """Where the header is with this separator, and how well the first rows fit it: ids found in
    its column, then rows with as many cells as it, then its number of columns."""
    rows: list[list[str]] = []
    try:
        rows.extend(islice(_reader(text, separator), SAMPLE_ROWS))
    except csv.Error:
        pass  # the rows before it still tell; _cells names the line if this separator is chosen
    seen = 0
    for index, row in enumerate(rows):
        if _blank(row):
            continue
        keys = [_column_key(cell) for cell in row]
        at = next((keys.index(name) for name in column.names if name in keys), None)
        if at is not None:
            body = [r for r in rows[index + 1 :] if not _blank(r)]
            ids = sum(1 for r in body if len(r) > at and column.canonical(r[at].strip()))
            consistent = sum(1 for r in body if len(r) == len(row))
            return _Layout(separator, index, row, at, (ids, consistent, len(row)))
        seen += 1
        if seen == HEADER_ROWS:
            return None
    return None


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _forced_separator(text: str) -> str | None:
    """The separator Excel names on a first line `sep=;` (it writes one for other locales)."""
    found = re.fullmatch(r'"?sep=(.)"?[;,\t]*', _first_line(text).strip(" "), re.IGNORECASE)
    return found.group(1) if found else None


def _no_id_column(text: str) -> DossierCsvError:
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[1] if _forced_separator(text) and len(lines) > 1 else _first_line(text)
    unquoted = "".join(part for i, part in enumerate(first.split('"')) if i % 2 == 0)
    separator = max(SEPARATORS, key=unquoted.count)
    headers = next((row for row in _reader(first, separator) if not _blank(row)), [])
    found = ", ".join(repr(h) for h in headers) or "none"
    return DossierCsvError(
        "the CSV needs a dossier_id column (or id, Id dossier, Identifiant du dossier), or a siret"
        f" column, in its first {HEADER_ROWS} rows; its columns: {found}"
    )


@dataclass(frozen=True)
class ClientList:
    column: ListColumn  # what `values` are: dossier ids, or SIRETs
    values: list[str]  # in file order, canonical
    # A firm's own export lists clients that have no SIRET yet: their lines, left out (a list of
    # dossier ids with a row lacking one is refused instead: it was meant to be sent whole).
    without_value: tuple[str, ...] = ()


def read_client_list(content: bytes) -> ClientList:
    """The dossier ids of a client list, or, when it has no id column, its SIRETs (a firm's own
    export), in file order and canonical form; the file is refused when a value is not one or a row
    with data lacks its id (blank rows are skipped)."""
    text = decode(content)
    if not text.strip():
        raise DossierCsvError("the file is empty")
    for column in (DOSSIER_ID, SIRET):
        if layout := _best_layout(text, column):
            return _values(text, layout, column)
    if (ids := _bare_ids(text)) is not None:
        return ClientList(DOSSIER_ID, ids)
    raise _no_id_column(text)


def _bare_ids(text: str) -> list[str] | None:
    """Dossier ids alone, one per line and no header (pasted from elsewhere): an id cannot be
    mistaken for anything else. None when any line is something else."""
    lines = [
        (f"line {n}", line.strip(' \t;,"')) for n, line in enumerate(text.splitlines(), 1) if line.strip()
    ]
    if not lines or not all(canonical_uuid(value) for _, value in lines):
        return None
    return canonical_ids(lines)


def read_dossier_ids(content: bytes) -> list[str]:
    """The values of the dossier id column (see read_client_list)."""
    listed = read_client_list(content)
    if listed.column is not DOSSIER_ID:
        raise _no_id_column(decode(content))
    return listed.values


def _best_layout(text: str, column: ListColumn) -> _Layout | None:
    forced = _forced_separator(text)
    layouts = [found for s in ([forced] if forced else SEPARATORS) if (found := _layout(text, s, column))]
    return max(layouts, key=lambda found: found.score) if layouts else None


def _values(text: str, layout: _Layout, column: ListColumn) -> ClientList:
    values, without_id = _cells(text, layout)
    name = layout.header[layout.column].strip()
    where = f"the {column.what} column" + ("" if name == column.what else f" ({name!r})")
    if not values:
        raise DossierCsvError(f"{where} has no values")
    try:
        ids = canonical_ids(values, column)
    except DossierCsvError as error:
        bad = str(error)
    else:
        bad = ""
    missing = (
        f"rows without a dossier id (fill it in, or delete the row): {_first(without_id, ', ')}"
        if without_id and column is DOSSIER_ID
        else ""
    )
    if bad or missing:
        raise DossierCsvError("; ".join(problem for problem in (bad, missing) if problem))
    return ClientList(column, ids, () if column is DOSSIER_ID else tuple(without_id))


def _cells(text: str, layout: _Layout) -> tuple[list[tuple[str, str]], list[str]]:
    """The id column's (line, value) pairs, and the lines of rows with data but no id."""
    rows = _reader(text, layout.separator)
    values: list[tuple[str, str]] = []
    without_id: list[str] = []
    try:
        for _ in range(layout.header_index + 1):
            next(rows)
        start = rows.line_num + 1
        for row in rows:
            line, start = start, rows.line_num + 1  # where the record starts: a cell may hold a line break
            if _blank(row):
                continue
            value = row[layout.column].strip() if len(row) > layout.column else ""
            if value:
                values.append((f"line {line}", value))
            else:
                without_id.append(f"line {line}")
    except csv.Error as error:
        raise DossierCsvError(f"line {rows.line_num}: the file cannot be read as CSV ({error})") from None
    return values, without_id
