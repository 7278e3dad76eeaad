"""`bulk send`, `bulk watch` and `bulk list`: start a bulk send through the API, follow it with a
progress bar, list the firm's batches.

Ctrl-C only detaches: the batch runs on in Temporal, and `bulk watch <id>` re-attaches. At the end the
skipped and failed dossiers are listed with their reasons (every dossier's outcome in `--report`);
the exit codes are in EXIT_CODES.
"""

from __future__ import annotations

import csv
import math
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column

from domain.identifiers import spaced_siret
from starter.api_client import (
    KEY_VARIABLE,
    SHOWN_PROBLEMS,
    ApiKey,
    ApiUrl,
    all_dossiers,
    api_client,
    console,
    default_api_url,
    errors,
    refused_by_api,
    unreachable,
)
from starter.dossier_csv import (
    DOSSIER_ID,
    SIRET,
    ClientList,
    DossierCsvError,
    canonical_ids,
    canonical_uuid,
    read_client_list,
)
from starter.dossiers_cli import for_a_spreadsheet

EXIT_CODES = (
    "Exit codes: 0 done, none failed (or detached); 1 some dossiers failed, the API refused the"
    " request or the report could not be written; 2 bad arguments or file, or the API cannot be"
    " reached (nothing started); 3 the API's answer was lost: the batch may have started (sending"
    " the same ids again is safe); 130 interrupted before the API answered."
)
bulk_app = typer.Typer(
    help="Send many mandates at once and follow their progress.", no_args_is_help=True, epilog=EXIT_CODES
)

MAX_DOSSIERS = 10_000  # per bulk send (api.md)
PARIS = ZoneInfo("Europe/Paris")
LOG_EVERY = 30.0  # seconds: a plain progress line at least this often when stdout is no terminal
LOG_AT_MOST = 5.0  # seconds: and at most this often, however fast the counts change
LOST_ANSWER = 3  # exit code: the batch may have started


def _report_path(path: Path | None) -> Path | None:
    # Said now, not when a batch of hours is done.
    if path is not None and not path.absolute().parent.is_dir():
        raise typer.BadParameter(f"no directory {str(path.absolute().parent)!r} to write it in")
    return path


Report = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        writable=True,
        callback=_report_path,
        help="When the batch is done, write every dossier's outcome and reason to this CSV file",
    ),
]


def _answer_lost(error: httpx.TransportError) -> typer.Exit:
    # The request went out and no answer came back: the API may well have started the batch.
    errors.print(f"[red]the API did not answer[/red] ({type(error).__name__}: {escape(str(error))})")
    errors.print(
        "The batch may have started; `bulk list` shows the firm's latest batches. Sending the same ids"
        " again is safe: a dossier that a batch has already taken (its mandate pending or being sent) is"
        " skipped, never sent twice."
    )
    return typer.Exit(LOST_ANSWER)


def watch_command(bulk_send_id: str, api_url: str) -> str:
    """The command that re-attaches, from any directory and shell: this Python (the venv's) and the
    API's address, always (the default depends on API_PORT). Never the key: it stays in the environment."""
    words = [sys.executable, "-m", "starter.cli", "bulk", "watch", bulk_send_id, "--api-url", api_url]
    return shlex.join(words)


def _print_watch_command(lead: str, bulk_send_id: str, api_url: str) -> None:
    console.print(f"{lead}: {escape(watch_command(bulk_send_id, api_url))}")
    console.print(f"  with the firm's API key in {KEY_VARIABLE} (or --api-key)")


def _read_csv(csv_path: Path | None) -> ClientList:
    """The file's dossier ids, or its SIRETs when it has no id column (a firm's own export)."""
    try:
        listed = read_client_list(csv_path.read_bytes()) if csv_path else ClientList(DOSSIER_ID, [])
    except DossierCsvError as error:
        raise typer.BadParameter(str(error), param_hint="--csv") from None
    except OSError as error:
        raise typer.BadParameter(f"cannot read it: {error.strerror}", param_hint="--csv") from None
    if listed.without_value:
        lines = listed.without_value
        shown = f"{', '.join(lines[:5])}{' ...' if len(lines) > 5 else ''}"
        console.print(f"{len(lines)} row(s) of the file have no SIRET and are left out: {shown}")
    return listed


def _arguments(dossier_ids: list[str] | None) -> list[str]:
    arguments = [(f"argument {i}", value.strip()) for i, value in enumerate(dossier_ids or [], start=1)]
    try:
        return canonical_ids(arguments)
    except DossierCsvError as error:
        raise typer.BadParameter(str(error), param_hint="DOSSIER_IDS") from None


def _ids_of_sirets(http: httpx.Client, api_url: str, sirets: list[str]) -> list[str]:
    """The firm's dossiers with these SIRETs (archived ones aside), in the file's order."""
    by_siret = {d["siret"]: d["id"] for d in all_dossiers(http, api_url, {}) if d["siret"]}
    wanted = list(dict.fromkeys(sirets))
    unknown = [siret for siret in wanted if siret not in by_siret]
    if unknown:
        console.print(
            f"{len(unknown)} SIRET(s) of the file match none of the firm's dossiers and are left out:"
            f" {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
        )
    found = [by_siret[siret] for siret in wanted if siret in by_siret]
    if not found:
        raise typer.BadParameter("no SIRET of the file is one of the firm's dossiers'", param_hint="--csv")
    console.print(f"{len(found)} dossier(s) found by their SIRET")
    return found


def _ids(given: list[str]) -> list[str]:
    """The distinct ids given (canonical already: `ABC...` and `{abc...}` are one dossier)."""
    ids = list(dict.fromkeys(given))  # canonical already: `ABC...` and `{abc...}` are one dossier
    if not ids:
        raise typer.BadParameter("give dossier ids, --csv or --ready")
    if len(ids) > MAX_DOSSIERS:
        raise typer.BadParameter(f"{len(ids)} dossiers: at most {MAX_DOSSIERS} per bulk send, split the list")
    if len(ids) < len(given):
        repeated = sum(1 for count in Counter(given).values() if count > 1)
        console.print(
            f"{repeated} dossier(s) listed more than once, each counted once:"
            f" {len(given)} ids given, {len(ids)} distinct"
        )
    return ids


def _ready_ids(http: httpx.Client, api_url: str) -> list[str]:
    """Every dossier of the firm that is `ready_for_mandate`, oldest first, from the API's list."""
    ready = all_dossiers(http, api_url, {"status": "ready_for_mandate"}, at_most=MAX_DOSSIERS)
    if len(ready) > MAX_DOSSIERS:
        console.print(
            f"Over {MAX_DOSSIERS} dossiers are ready_for_mandate: this batch takes the {MAX_DOSSIERS} oldest."
            " Send --ready again for the rest once this batch's dossiers show mandate_pending (it takes"
            " them within minutes; until then they would be skipped, not the rest sent)."
        )
    return [dossier["id"] for dossier in ready[:MAX_DOSSIERS]]


@bulk_app.command("send", epilog=EXIT_CODES)
def send(
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            exists=True,
            dir_okay=False,
            help="Client list with a dossier_id (or id, Id dossier) column, or else a SIRET column (your"
            " own export: the firm's dossiers with those SIRETs); comma, semicolon or tab separated",
        ),
    ] = None,
    dossier_ids: Annotated[
        list[str] | None, typer.Argument(help="Dossier ids (or use --csv or --ready)")
    ] = None,
    ready: Annotated[
        bool,
        typer.Option(
            "--ready",
            help="Every dossier of the firm that is ready_for_mandate (at most 10,000, oldest first)",
        ),
    ] = False,
    detach: Annotated[bool, typer.Option(help="Start the batch and return at once")] = False,
    report: Report = None,
) -> None:
    """Generate and send the mandates of the given dossiers; the ineligible are skipped with a reason."""
    if detach and report is not None:  # nothing would be there to write it when the batch ends
        raise typer.BadParameter(
            "a detached send writes no report: give --report to `bulk watch <id>` later",
            param_hint="--report",
        )
    if ready and (csv_path or dossier_ids):
        raise typer.BadParameter("--ready chooses the dossiers itself: give no ids or --csv with it")
    listed = _read_csv(csv_path)
    column, from_csv = listed.column, listed.values
    arguments = _arguments(dossier_ids)
    ids = [] if ready or column is SIRET else _ids([*from_csv, *arguments])
    with api_client(api_url, api_key) as http:
        if ready and not (ids := _ready_ids(http, api_url)):
            console.print("No dossier is ready_for_mandate: nothing to send.")
            return
        if column is SIRET:
            ids = _ids([*_ids_of_sirets(http, api_url, from_csv), *arguments])
        try:
            answer = http.post("/v1/bulk-sends", json={"dossier_ids": ids})
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # nothing reached the API
            raise unreachable(api_url, error) from None
        except httpx.TransportError as error:
            raise _answer_lost(error) from None
        except KeyboardInterrupt:
            errors.print(
                "Interrupted before the API answered: the batch may have started (its id is unknown)."
                " Sending the same ids again is safe: a dossier already taken is skipped, never sent twice."
            )
            raise typer.Exit(130) from None
        refused_by_api(answer)
        batch = answer.json()
        console.print(f"Bulk send [bold]{batch['id']}[/bold]: {batch['total']} dossier(s)")
        if detach:
            _print_watch_command("Follow it with", batch["id"], api_url)
        else:
            _watch(http, api_url, batch["id"], answered=True, report=report)


@bulk_app.command("watch", epilog=EXIT_CODES)
def watch(
    bulk_send_id: Annotated[str, typer.Argument(help="The bulk send's id")],
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
    report: Report = None,
) -> None:
    """Re-attach to a running (or finished) bulk send."""
    batch_id = canonical_uuid(bulk_send_id.strip())
    if batch_id is None:
        raise typer.BadParameter(
            f"{bulk_send_id!r} is no bulk send id (a UUID, as `bulk send` printed it)",
            param_hint="BULK_SEND_ID",
        )
    with api_client(api_url, api_key) as http:
        _watch(http, api_url, batch_id, answered=False, report=report)


@bulk_app.command("list")
def list_batches(
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
) -> None:
    """The firm's bulk sends, newest first: id, when, counts (one whose answer was lost, too)."""
    with api_client(api_url, api_key) as http:
        try:
            answer = http.get("/v1/bulk-sends", params={"limit": limit})
        except httpx.TransportError as error:
            raise unreachable(api_url, error) from None
        refused_by_api(answer)
    batches = answer.json()["items"]
    if not batches:
        console.print("No bulk send yet.")
    for batch in batches:
        created = datetime.fromisoformat(batch["created_at"]).astimezone(PARIS)
        state = "done" if batch["done"] else f"{batch['in_progress']} in progress"
        console.print(
            f"{batch['id']}  {created:%Y-%m-%d %H:%M} Paris  {batch['total']} dossier(s): {_describe(batch)}"
            f" · {state}"
        )


def describe_eta(eta: str | None, now: datetime) -> str:
    """` · ETA in 2 h 05 min (14:03 Paris)`, or nothing when nothing is left."""
    if not eta:
        return ""
    at = datetime.fromisoformat(eta)
    minutes = round((at - now).total_seconds() / 60)
    if (at - now).total_seconds() < 60:
        left = "under a minute"
    elif minutes >= 60:
        left = f"{minutes // 60} h {minutes % 60:02d} min"
    else:
        left = f"{minutes} min"
    return f" · ETA in {left} ({at.astimezone(PARIS):%H:%M} Paris)"


def describe_stall(stalled_since: str, now: datetime) -> str:
    """` · stalled since 14:03 Paris (25 min): ...`, in place of an ETA that no longer means anything."""
    at = datetime.fromisoformat(stalled_since)
    minutes = max(0, round((now - at).total_seconds() / 60))
    return (
        f" · stalled since {at.astimezone(PARIS):%H:%M} Paris ({minutes} min): nothing is being sent"
        " (YouSign out of reach or making us wait, or the service stopped); it goes on by itself then"
    )


def _describe(progress: dict) -> str:
    counts = f"sent {progress['sent']} · skipped {progress['skipped']} · failed {progress['failed']}"
    now = datetime.now(UTC)
    if progress.get("stalled_since"):
        return counts + describe_stall(progress["stalled_since"], now)
    return counts + describe_eta(progress.get("eta"), now)


class _Bar:
    """The progress bar, shown from the API's first answer on: an error before it (an unknown id, a
    wrong key) is printed alone, not under an empty bar."""

    def __init__(self) -> None:
        self._progress: Progress | None = None

    def show(self, **fields: Any) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),  # fixed: at 80 columns the counts beside it stay whole
                MofNCompleteColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.fields[counts]}", table_column=Column(ratio=1, overflow="fold")),
                console=console,
            )
            self._progress.start()
            self._progress.add_task("Mandates", total=None, counts="")
        self._progress.update(self._progress.task_ids[0], **fields)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class _Lines:
    """Without a terminal (a log, a pipe, cron): a plain line when the counts change, at most every
    LOG_AT_MOST seconds, and every LOG_EVERY seconds regardless, so that the log shows it is alive."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._shown: object = None
        self._at = -math.inf

    def show(self, **fields: Any) -> None:
        # What changes the line is the counts, not the ETA ticking down.
        state = (fields.get("completed"), fields.get("total")) if "total" in fields else fields.get("counts")
        now = self._clock()
        due = now - self._at >= LOG_EVERY or (state != self._shown and now - self._at >= LOG_AT_MOST)
        if not due:
            return
        self._shown, self._at = state, now
        done = f"{fields['completed']}/{fields['total']} · " if "total" in fields else ""
        # Paris time, as the ETA and the stall on the same line.
        console.print(
            f"{datetime.now(PARIS):%H:%M:%S} Mandates {done}{escape(fields['counts'])}", highlight=False
        )

    def close(self) -> None:
        pass


def _watch(
    http: httpx.Client,
    api_url: str,
    bulk_send_id: str,
    *,
    answered: bool,
    report: Path | None = None,
    interval: float = 1.0,
) -> None:
    display = _Bar() if console.is_terminal else _Lines()
    try:
        try:
            progress = _follow(http, bulk_send_id, interval, display.show, answered=answered)
        finally:
            display.close()
    except KeyboardInterrupt:
        _print_watch_command("Detached; the batch goes on. Re-attach with", bulk_send_id, api_url)
        raise typer.Exit(0) from None
    console.print(f"Done: {_describe(progress)}")
    if not _list_problems(http, bulk_send_id, report) or progress["failed"]:
        raise typer.Exit(1)


def _follow(
    http: httpx.Client, bulk_send_id: str, interval: float, show: Callable[..., None], *, answered: bool
) -> dict:
    """Poll until the batch is done. Once the API has answered in this run, an outage (a restart, a
    long batch) is waited out; before that, it is a wrong address or a stopped API: said at once."""
    outage = 0
    while True:
        try:
            answer = http.get(f"/v1/bulk-sends/{bulk_send_id}", params={"limit": 1})
        except httpx.TransportError as error:
            if not answered:
                raise unreachable(str(http.base_url), error) from None
            trouble = f"API unreachable ({type(error).__name__})"
        else:
            answered = True
            trouble = f"API answered {answer.status_code}" if answer.status_code >= 500 else None
        if trouble:
            outage = min(outage + 1, 10)
            show(counts=f"{trouble}, trying again")
            time.sleep(min(30.0, interval * 2**outage))
            continue
        refused_by_api(answer)
        outage = 0
        progress = answer.json()
        handled = progress["sent"] + progress["skipped"] + progress["failed"]
        show(total=progress["total"], completed=handled, counts=_describe(progress))
        if progress["done"]:
            return progress
        time.sleep(interval)


def _list_problems(http: httpx.Client, bulk_send_id: str, report: Path | None) -> bool:
    """The skipped and failed dossiers with their reasons (the first SHOWN_PROBLEMS of them); every
    dossier's outcome in the report, if asked. False when the report could not be written."""
    shown, more, cursor = 0, 0, None
    items: list[dict] = []
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        try:
            answer = http.get(f"/v1/bulk-sends/{bulk_send_id}", params=params)
        except httpx.TransportError:
            console.print(f"  (the API went away: the list is at GET /v1/bulk-sends/{bulk_send_id})")
            return _no_report(report, bulk_send_id, "the API went away")
        refused_by_api(answer)
        page = answer.json()
        items += page["items"] if report else []
        for item in page["items"]:
            if item["outcome"] not in ("skipped", "failed"):
                continue
            if shown < SHOWN_PROBLEMS:
                console.print(
                    f"  {item['outcome']:8} {escape(_client(item))}  {escape(item.get('reason') or '')}"
                )
                shown += 1
            else:
                more += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if more:
        where = escape(str(report)) if report else f"`bulk watch {bulk_send_id} --report FILE` lists them all"
        console.print(f"  ... and {more} more: {where}")
    if report:
        try:
            write_report(report, items)
        except OSError as error:
            return _no_report(report, bulk_send_id, str(error.strerror))
        console.print(f"Every dossier's outcome: {escape(str(report))}")
    return True


def _client(item: dict) -> str:
    """How the firm knows the dossier: its name and SIRET, then its id (alone for an unknown one)."""
    name, siret = item.get("name"), item.get("siret")
    if not name:
        return item["dossier_id"]
    return f"{name} ({spaced_siret(siret) if siret else 'no SIRET'}, {item['dossier_id']})"


def _no_report(report: Path | None, bulk_send_id: str, why: str) -> bool:
    if report is None:
        return True
    errors.print(f"[red]no report written to {escape(str(report))}[/red] ({escape(why)}):")
    errors.print(f"  `bulk watch {bulk_send_id} --report FILE` writes it once the API answers")
    return False


def write_report(path: Path, items: list[dict]) -> None:
    """Semicolon-separated UTF-8 with a BOM: the CSV that French Excel opens as it is."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["dossier_id", "name", "siret", "outcome", "reason", "mandate_id"])
        for item in items:
            siret = item.get("siret")
            writer.writerow(
                [
                    item["dossier_id"],
                    for_a_spreadsheet(item.get("name") or ""),
                    spaced_siret(siret) if siret else "",  # text for Excel, not 7.32829E+13
                    item["outcome"],
                    item.get("reason") or "",
                    item.get("mandate_id") or "",
                ]
            )
