"""Rows as a table in a wide terminal, else as tab-separated lines that are never cut."""

from __future__ import annotations

from collections.abc import Sequence

import typer
from rich.markup import escape
from rich.table import Column, Table

from starter.api_client import console

TABLE_WIDTH = 100  # a table of a few columns from this width on: whole ids, names readable beside them


def print_rows(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    table_width: int = TABLE_WIDTH,
    lines_only: frozenset[str] = frozenset(),
) -> None:
    """A table from `table_width` columns of terminal on (more for more columns), without the
    `lines_only` columns (too wide beside the others); else every column as lines."""
    if not console.is_terminal or console.width < table_width:
        # Piped, or too narrow for the table: tab-separated lines (`cut -f1` gives the ids).
        for line in ([str(c.header) for c in columns], *rows):
            typer.echo("\t".join(line))
        return
    shown = [i for i, column in enumerate(columns) if str(column.header) not in lines_only]
    table = Table(*(columns[i] for i in shown))
    for row in rows:
        table.add_row(*(escape(row[i]) for i in shown))
    console.print(table, soft_wrap=False)
