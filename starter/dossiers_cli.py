"""`dossiers list`: the firm's client list through the API (SIRET, legal representative, status),
on screen or as the CSV that French Excel opens and `bulk send --csv` takes back."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.markup import escape
from rich.table import Column

from domain.identifiers import spaced_siret
from domain.status import DossierStatus, MandateStatus
from starter.api_client import ApiKey, ApiUrl, all_dossiers, api_client, console, default_api_url
from starter.cli_table import print_rows

dossiers_app = typer.Typer(help="The firm's client dossiers.", no_args_is_help=True)

# Seven columns on screen, a whole id among them: narrower, names would be cut to a few letters.
DOSSIER_TABLE_WIDTH = 140
CSV_HEADER = ["dossier_id", "name", "siret", "legal_representative", "position", "email", "status", "mandate"]


def for_a_spreadsheet(text: str) -> str:
    """A name Excel would run as a formula (=..., +..., -..., @...) kept as text."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def dossier_row(dossier: dict[str, Any]) -> list[str]:
    rep = dossier["legal_representative"]
    mandate = dossier["mandate"]
    return [
        dossier["id"],
        dossier["name"],
        dossier["siret"] or "",
        f"{rep['first_name']} {rep['last_name']}" if rep else "",
        (rep.get("position") or "") if rep else "",
        rep["email"] if rep else "",
        dossier["einvoicing_status"],
        mandate["status"] if mandate else "",
    ]


def spreadsheet_row(row: list[str]) -> list[str]:
    dossier_id, name, siret, *rest = row
    return [dossier_id, for_a_spreadsheet(name), siret and spaced_siret(siret), *map(for_a_spreadsheet, rest)]


def write_csv(out: TextIO, rows: list[list[str]]) -> None:
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    writer.writerows(spreadsheet_row(row) for row in rows)


@dossiers_app.command("list")
def list_dossiers(
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
    status: Annotated[
        list[DossierStatus] | None, typer.Option(help="Only this status (repeat for several)")
    ] = None,
    mandate_status: Annotated[
        list[MandateStatus] | None,
        typer.Option(help="Only those whose current mandate is in this status (failed, say; repeatable)"),
    ] = None,
    search: Annotated[str | None, typer.Option(help="Part of the name, or the start of the SIRET")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="The archived dossiers instead")] = False,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            dir_okay=False,
            help="Write them to this CSV file (for Excel, or `bulk send --csv`); - for standard output",
        ),
    ] = None,
) -> None:
    """The firm's dossiers, oldest first: SIRET, legal representative, status and mandate."""
    params: dict[str, Any] = {
        "status": [s.value for s in status or []],
        "mandate_status": [s.value for s in mandate_status or []],
        "archived": str(archived).lower(),
    }
    if search:
        params["search"] = search
    with api_client(api_url, api_key) as http:
        rows = [dossier_row(d) for d in all_dossiers(http, api_url, params)]
    if csv_path is None:
        if not rows and console.is_terminal:  # piped, the header alone: a script reads no rows
            console.print("No dossier matches.")
            return
        print_rows(
            [
                Column("dossier_id", no_wrap=True, min_width=36),
                Column("name", ratio=2),
                Column("siret", no_wrap=True),
                Column("legal_representative", ratio=1),
                Column("position", ratio=1),
                Column("email"),
                Column("status", no_wrap=True),
                Column("mandate", no_wrap=True),
            ],
            rows,
            table_width=DOSSIER_TABLE_WIDTH,
            lines_only=frozenset({"email"}),  # with it, names would be cut to a few letters
        )
        return
    if str(csv_path) == "-":  # to standard output, for a script: the same CSV without Excel's BOM
        write_csv(sys.stdout, rows)
        return
    try:
        # Semicolons and a BOM: the CSV that French Excel opens as it is.
        with csv_path.open("w", encoding="utf-8-sig", newline="") as out:
            write_csv(out, rows)
    except OSError as error:
        raise typer.BadParameter(f"cannot write it: {error.strerror}", param_hint="--csv") from None
    console.print(f"{len(rows)} dossier(s) written to {escape(str(csv_path))}")
