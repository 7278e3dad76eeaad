"""Rows as a table in a wide terminal, else as tab-separated lines that are never cut."""

from __future__ import annotations

from collections.abc import Sequence

import typer
from rich.markup import escape
from rich.table import Column, Table

from starter.api_client import console

TABLE_WIDTH = 100  # a table from this width on: whole ids, names readable beside them


def print_rows(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    if not console.is_terminal or console.width < TABLE_WIDTH:
        # Piped, or too narrow for the table: tab-separated lines (`cut -f1` gives the ids).
        for line in ([str(c.header) for c in columns], *rows):
            typer.echo("\t".join(line))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table, soft_wrap=False)
