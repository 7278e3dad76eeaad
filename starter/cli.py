"""Commands: `python -m starter.cli firms create|list|new-key|revoke-keys`, `bulk send|watch|list` and
`dossiers list`."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

import asyncpg
import typer
from rich.markup import escape
from rich.table import Column

from config.settings import settings_or_exit
from domain.errors import RuleViolation
from domain.identifiers import normalize_siren
from domain.printable import check_printable
from starter.api_client import console, errors  # one output for every command
from starter.bulk_cli import bulk_app
from starter.cli_table import print_rows
from starter.dossiers_cli import dossiers_app
from store import firms
from store.database import connect_database
from store.records import Firm

T = TypeVar("T")
app = typer.Typer(help="Operate the e-invoicing mandate service.", no_args_is_help=True)
firms_app = typer.Typer(help="Firms and their API keys.", no_args_is_help=True)
app.add_typer(firms_app, name="firms")
app.add_typer(bulk_app, name="bulk")
app.add_typer(dossiers_app, name="dossiers")


def with_db(action: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        settings = settings_or_exit("mandates")
        dsn = settings.database_url.get_secret_value() if settings.database_url else None
        if dsn is None and not (settings.data_dir / "postgres").is_dir():
            # A firm created in a database of its own would be unknown to the running stack.
            errors.print(
                f"[red]no database in {escape(str(settings.data_dir))}[/red]: give the stack's DATA_DIR"
                " (where `make run` keeps its data) or DATABASE_URL"
            )
            raise typer.Exit(2)
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's, not the firm's concern
        db = await connect_database(dsn, settings.data_dir, max_size=2)
        try:
            return await action(db)
        finally:
            await db.close()

    return asyncio.run(run())


@firms_app.command("create")
def create_firm(
    name: Annotated[str, typer.Option(help="The firm's legal name")],
    siren: Annotated[str, typer.Option(help="The firm's SIREN (9 digits)")],
    address: Annotated[str | None, typer.Option(help="Registered address")] = None,
    force: Annotated[bool, typer.Option(help="Create it even if a firm with this SIREN exists")] = False,
) -> None:
    """Create a firm and print its API key (shown once: only its hash is stored)."""
    try:
        siren = normalize_siren(siren)
    except RuleViolation as violation:
        raise typer.BadParameter(violation.message, param_hint="--siren") from None
    if not name.strip():
        raise typer.BadParameter("the name must not be empty", param_hint="--name")
    for hint, value in (("--name", name), ("--address", address or "")):
        try:
            check_printable(value)  # both are printed in every mandate of the firm
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint=hint) from None

    async def create(db: asyncpg.Pool) -> tuple[UUID, str] | list[Firm]:
        # A second firm for one SIREN is most often a typo or a second run: its clients and keys would
        # be split between two firms.
        try:
            firm = await firms.create_firm(
                db, name=name.strip(), siren=siren, address=address, unique_siren=not force
            )
        except firms.SirenTaken as taken:
            return taken.firms
        return firm.id, await firms.issue_api_key(db, firm.id)

    created = with_db(create)
    if isinstance(created, list):
        named = ", ".join(f"{firm.id} ({firm.name})" for firm in created)
        raise typer.BadParameter(
            f"a firm with SIREN {siren} exists already: {named}. A new key for it: `firms new-key"
            f" {created[0].id}`; another firm with this SIREN all the same: --force",
            param_hint="--siren",
        )
    firm_id, key = created
    console.print(f"Firm [bold]{escape(name)}[/bold] created: {firm_id}")
    console.print(f"API key (shown once, keep it safe): [bold]{key}[/bold]")


@firms_app.command("list")
def list_firms() -> None:
    """List firms with their number of active keys."""

    async def fetch(db: asyncpg.Pool):
        return await db.fetch(
            "SELECT f.id, f.name, f.siren, f.platform_name,"
            " count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys"
            " FROM firms f LEFT JOIN api_keys k ON k.firm_id = f.id GROUP BY f.id ORDER BY f.created_at"
        )

    rows = [
        (str(r["id"]), r["name"], r["siren"], r["platform_name"] or "-", str(r["active_keys"]))
        for r in with_db(fetch)
    ]
    print_rows(
        [
            Column("id", no_wrap=True, min_width=36),
            Column("name", ratio=2),
            Column("SIREN", no_wrap=True),
            Column("platform", ratio=1),
            Column("active keys", no_wrap=True, justify="right"),
        ],
        rows,
    )


@firms_app.command("new-key")
def new_key(firm_id: Annotated[UUID, typer.Argument(help="The firm's id")]) -> None:
    """Issue another API key for a firm (e.g. before revoking a leaked one)."""

    async def issue(db: asyncpg.Pool) -> str | None:
        if await firms.get_firm(db, firm_id) is None:
            return None
        return await firms.issue_api_key(db, firm_id)

    key = with_db(issue)
    if key is None:
        raise typer.BadParameter("no such firm", param_hint="FIRM_ID")
    console.print(f"API key (shown once, keep it safe): [bold]{key}[/bold]")


@firms_app.command("revoke-keys")
def revoke_keys(
    firm_id: Annotated[UUID, typer.Argument(help="The firm's id")],
    prefix: Annotated[
        str | None, typer.Option(help="Only this key (the key itself, or its first 8 characters)")
    ] = None,
) -> None:
    """Revoke a firm's API keys (all of them, or the one with the given prefix)."""

    async def revoke(db: asyncpg.Pool) -> int | None:
        if await firms.get_firm(db, firm_id) is None:
            return None
        return await firms.revoke_api_keys(db, firm_id, prefix[:8] if prefix else None)

    revoked = with_db(revoke)
    if revoked is None:
        raise typer.BadParameter("no such firm", param_hint="FIRM_ID")
    console.print(f"{revoked} key(s) revoked")
    if prefix and not revoked:
        raise typer.Exit(1)  # nothing matched: the leaked key is still valid


if __name__ == "__main__":
    app()
