"""`bulk send` and `bulk watch`: start a bulk send through the API and follow it with a progress bar.

Ctrl-C only detaches: the batch runs on in Temporal, and `bulk watch <id>` re-attaches.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

bulk_app = typer.Typer(help="Send many mandates at once and follow their progress.", no_args_is_help=True)
console = Console()

ApiUrl = Annotated[str, typer.Option(envvar="MANDATES_API_URL", help="The API's base URL")]
ApiKey = Annotated[str, typer.Option(envvar="MANDATES_API_KEY", help="The firm's API key")]


def read_dossier_ids(csv_path: Path) -> list[str]:
    """Ids from a CSV with a `dossier_id` (or `id`) column, as the firm's client list exports it."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        column = next((c for c in ("dossier_id", "id") if c in (reader.fieldnames or [])), None)
        if column is None:
            raise typer.BadParameter("the CSV needs a dossier_id (or id) column", param_hint="--csv")
        return [row[column].strip() for row in reader if row[column].strip()]


def _client(api_url: str, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)


def _fail(answer: httpx.Response) -> None:
    if answer.is_error:
        body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
        errors = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors", []))
        console.print(f"[red]{answer.status_code} {body.get('detail', answer.text)}[/red] {errors}")
        raise typer.Exit(1)


@bulk_app.command("send")
def send(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
    csv_path: Annotated[Path | None, typer.Option("--csv", exists=True, dir_okay=False)] = None,
    dossier_ids: Annotated[list[str] | None, typer.Argument(help="Dossier ids (or use --csv)")] = None,
    detach: Annotated[bool, typer.Option(help="Start the batch and return at once")] = False,
) -> None:
    """Generate and send the mandates of the given dossiers; the ineligible are skipped with a reason."""
    ids = [*(read_dossier_ids(csv_path) if csv_path else []), *(dossier_ids or [])]
    if not ids:
        raise typer.BadParameter("give dossier ids or --csv")
    with _client(api_url, api_key) as http:
        answer = http.post("/v1/bulk-sends", json={"dossier_ids": ids})
        _fail(answer)
        batch = answer.json()
        console.print(f"Bulk send [bold]{batch['id']}[/bold]: {batch['total']} dossiers")
        if not detach:
            _watch(http, batch["id"])


@bulk_app.command("watch")
def watch(
    bulk_send_id: Annotated[str, typer.Argument(help="The bulk send's id")],
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
) -> None:
    """Re-attach to a running (or finished) bulk send."""
    with _client(api_url, api_key) as http:
        _watch(http, bulk_send_id)


def _describe(progress: dict) -> str:
    eta = f" · ETA {progress['eta'][:19].replace('T', ' ')} UTC" if progress.get("eta") else ""
    return f"sent {progress['sent']} · skipped {progress['skipped']} · failed {progress['failed']}{eta}"


def _watch(http: httpx.Client, bulk_send_id: str, interval: float = 1.0) -> dict:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("Mandates", total=None, counts="")
            while True:
                answer = http.get(f"/v1/bulk-sends/{bulk_send_id}", params={"limit": 1})
                _fail(answer)
                progress = answer.json()
                handled = progress["sent"] + progress["skipped"] + progress["failed"]
                bar.update(task, total=progress["total"], completed=handled, counts=_describe(progress))
                if progress["done"]:
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        console.print(f"Detached; the batch goes on. Re-attach with: bulk watch {bulk_send_id}")
        raise typer.Exit(0) from None
    console.print(f"Done: {_describe(progress)}")
    return progress
