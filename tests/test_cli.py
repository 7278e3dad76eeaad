"""The operator CLI against the real (embedded) database."""

import re
import secrets

import pytest
from typer.testing import CliRunner

from domain.identifiers import luhn_complete
from starter.cli import app


def fresh_siren() -> str:
    # Tests share the database, and a SIREN is refused once a firm has it: each test its own.
    return luhn_complete(f"9{secrets.randbelow(10**7):07d}")


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    from config.settings import get_settings

    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_create_list_and_revoke(cli, db):
    siren = fresh_siren()
    spaced = f"{siren[:3]} {siren[3:6]} {siren[6:]}"
    created = cli.invoke(app, ["firms", "create", "--name", "Cabinet CLI", "--siren", spaced])
    assert created.exit_code == 0, created.output
    firm_id = re.search(r"created: ([0-9a-f-]{36})", created.output).group(1)
    key = re.search(r"(mk_\S+)", created.output).group(1)

    listed = cli.invoke(app, ["firms", "list"])  # piped: tab-separated, the id whole
    assert f"{firm_id}\tCabinet CLI\t{siren}\t-\t1" in listed.output.splitlines()

    another = cli.invoke(app, ["firms", "new-key", firm_id])
    assert another.exit_code == 0 and "mk_" in another.output
    revoked = cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key])  # the leaked key itself
    assert "1 key(s) revoked" in revoked.output
    again = cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key[:8]])
    assert again.exit_code == 1 and "0 key(s) revoked" in again.output  # nothing matched: say so
    unknown = cli.invoke(app, ["firms", "revoke-keys", "00000000-0000-0000-0000-000000000000"])
    assert unknown.exit_code != 0 and "no such firm" in unknown.output


def test_without_the_stacks_database_nothing_is_created(tmp_path, monkeypatch):
    from config.settings import get_settings

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    try:
        refused = CliRunner().invoke(app, ["firms", "create", "--name", "Cabinet", "--siren", fresh_siren()])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 2 and "no database in" in refused.output and "mk_" not in refused.output
    assert not (tmp_path / "elsewhere").exists()  # no empty database of its own, unknown to the stack


def test_names_are_printed_verbatim(cli, db):
    # Rich markup in a name must neither break the output (after the key is stored) nor be interpreted.
    created = cli.invoke(
        app, ["firms", "create", "--name", "Cabinet [/b] & [red]Fils", "--siren", fresh_siren()]
    )
    assert created.exit_code == 0, created.output
    assert "Cabinet [/b] & [red]Fils" in created.output and "mk_" in created.output


def test_a_second_firm_with_a_siren_needs_force(cli, db):
    siren = fresh_siren()
    first = cli.invoke(app, ["firms", "create", "--name", "Cabinet Un", "--siren", siren])
    firm_id = re.search(r"created: ([0-9a-f-]{36})", first.output).group(1)
    again = cli.invoke(app, ["firms", "create", "--name", "Cabinet Deux", "--siren", siren])
    assert again.exit_code == 2 and "mk_" not in again.output
    said = " ".join(again.output.replace("│", " ").split())  # the error's box wraps it
    assert f"a firm with SIREN {siren} exists already: {firm_id} (Cabinet Un)" in said
    forced = cli.invoke(app, ["firms", "create", "--name", "Cabinet Deux", "--siren", siren, "--force"])
    assert forced.exit_code == 0 and "mk_" in forced.output


def test_firms_list_never_cuts_an_id_in_a_terminal(cli, db, monkeypatch):
    import io

    from rich.console import Console

    from starter import cli_table

    name = "Cabinet d'expertise comptable Dupont, Durand et Associés de Paris"
    created = cli.invoke(app, ["firms", "create", "--name", name, "--siren", fresh_siren()])
    firm_id = re.search(r"created: ([0-9a-f-]{36})", created.output).group(1)
    for width, table in ((100, True), (80, False)):  # a table from 100 columns on; below, plain lines
        screen = io.StringIO()
        terminal = Console(file=screen, width=width, force_terminal=True, color_system=None)
        monkeypatch.setattr(cli_table, "console", terminal)
        listed = cli.invoke(app, ["firms", "list"])
        assert firm_id in (screen.getvalue() if table else listed.output), width
        assert ("┃" in screen.getvalue()) == table, width


def test_bad_siren_is_refused_with_its_reason(cli):
    refused = cli.invoke(app, ["firms", "create", "--name", "X", "--siren", "123456789"])
    assert refused.exit_code != 0 and "Luhn" in refused.output


def test_unknown_firm(cli):
    refused = cli.invoke(app, ["firms", "new-key", "00000000-0000-0000-0000-000000000000"])
    assert refused.exit_code != 0 and "no such firm" in refused.output


# The bulk CLI's pieces that need no server.


A1, B2, C3, D4, D5 = (f"00000000-0000-4000-8000-0000000000{n}" for n in ("a1", "b2", "c3", "d4", "d5"))


def test_csv_from_french_excel_semicolons_and_windows_1252():
    from starter.dossier_csv import read_dossier_ids

    content = f"Nom;Dossier ID;SIRET\r\nSociété Générale;{A1};732 829 320 00074\r\n;;\r\nB;{B2};\r\n"
    assert read_dossier_ids(content.encode("cp1252")) == [A1, B2]  # blank rows skipped
    assert read_dossier_ids(content.encode("utf-16")) == [A1, B2]
    assert read_dossier_ids(("\ufeff" + content.replace(";", ",")).encode()) == [A1, B2]
    assert read_dossier_ids(f"id\tname\n{C3}\tX\n".encode()) == [C3]
    # A quoted header with a comma inside, and a byte Windows-1252 leaves unassigned.
    quoted = f'"Nom, prénom";dossier_id\n"Dupont, Jean";{D4}\n\x81;{D5}\n'
    assert read_dossier_ids(quoted.encode("latin-1")) == [D4, D5]


def test_values_that_are_no_dossier_ids_are_named_with_their_line():
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    rows = "".join(
        f"Client {i};{value}\n" for i, value in enumerate([A1, "73282932000074", B2, "x"] + ["y"] * 5)
    )
    with pytest.raises(DossierCsvError) as refused:
        read_dossier_ids(f"nom;dossier_id\n{rows}".encode())
    assert str(refused.value) == (
        "not dossier ids: line 3: '73282932000074'; line 5: 'x'; line 6: 'y'; line 7: 'y'; line 8: 'y'"
        " and 2 more"
    )


def test_csv_without_an_id_column_says_what_it_found():
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    with pytest.raises(DossierCsvError, match="its columns: 'nom', 'siret'"):
        read_dossier_ids(b"nom;siret\nA;73282932000074\n")
    # Ids alone, one per line, without a header: taken, as ids cannot be mistaken for anything else.
    assert read_dossier_ids(f"{A1}\r\n\r\n{B2.upper()};\n".encode()) == [A1, B2]
    with pytest.raises(DossierCsvError, match=f"its columns: '{A1}'"):
        read_dossier_ids(f"{A1}\nnot an id\n".encode())  # one line that is not: the header is asked for


def test_api_url_and_eta_as_a_user_reads_them():
    from datetime import UTC, datetime, timedelta

    from starter.api_client import api_base
    from starter.bulk_cli import describe_eta

    assert (
        api_base("http://127.0.0.1:8000/v1/") == api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    )
    now = datetime(2027, 1, 11, 11, 0, tzinfo=UTC)
    assert describe_eta("2027-01-11T13:05:00+00:00", now) == " · ETA in 2 h 05 min (14:05 Paris)"
    assert describe_eta("2027-01-11T11:07:00+00:00", now) == " · ETA in 7 min (12:07 Paris)"
    assert describe_eta("2027-01-11T11:00:16+00:00", now) == " · ETA in under a minute (12:00 Paris)"
    assert describe_eta(None, now) == ""
    # Stalled: since when (Paris), in place of the ETA.
    from starter.bulk_cli import _describe

    progress = {"sent": 3, "skipped": 0, "failed": 0, "eta": "2999-01-01T00:00:00+00:00"}
    stalled = _describe(progress | {"stalled_since": (datetime.now(UTC) - timedelta(minutes=25)).isoformat()})
    assert "ETA" not in stalled and "stalled since" in stalled and "(25 min)" in stalled, stalled
    assert "ETA in" in _describe(progress | {"stalled_since": None})


def test_bulk_send_without_key_or_server_says_what_to_do(tmp_path):
    listing = tmp_path / "clients.csv"
    listing.write_text("dossier_id\n3f2b8c1e-0000-4000-8000-000000000000\n")
    runner = CliRunner()
    no_key = runner.invoke(app, ["bulk", "send", "--csv", str(listing)], env={"MANDATES_API_KEY": ""})
    assert no_key.exit_code == 2 and "MANDATES_API_KEY" in no_key.output
    env = {"MANDATES_API_KEY": "mk_x", "MANDATES_API_URL": "http://127.0.0.1:1"}  # nothing listens there
    down = runner.invoke(app, ["bulk", "send", "--csv", str(listing)], env=env)
    assert down.exit_code == 2 and "cannot reach the API at http://127.0.0.1:1" in down.output
    assert "Traceback" not in down.output and isinstance(down.exception, SystemExit)


def test_a_detached_send_cannot_promise_a_report(tmp_path):
    env = {"MANDATES_API_KEY": "mk_x", "MANDATES_API_URL": "http://127.0.0.1:1"}
    args = [
        "bulk",
        "send",
        "--detach",
        "--report",
        str(tmp_path / "r.csv"),
        "3f2b8c1e-0000-4000-8000-000000000000",
    ]
    refused = CliRunner().invoke(app, args, env=env)
    assert refused.exit_code == 2 and "a detached send writes no report" in refused.output


def test_the_watch_waits_out_an_api_restart():
    import httpx

    from starter.bulk_cli import _follow

    answers = iter(["refused", 503, "done"])
    done = {"total": 1, "sent": 1, "skipped": 0, "failed": 0, "done": True, "eta": None}

    def api(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(503) if answer == 503 else httpx.Response(200, json=done)

    shown: list[dict] = []
    with httpx.Client(base_url="http://api", transport=httpx.MockTransport(api)) as http:
        assert _follow(http, "b1", 0.001, lambda **fields: shown.append(fields), answered=True) == done
    assert [f["counts"] for f in shown[:2]] == [
        "API unreachable (ConnectError), trying again",
        "API answered 503, trying again",
    ]


# Client lists as spreadsheets write them (the reviewer's samples, reduced).

E1 = "02c911ab-1db4-4395-9d77-e709e3709188"


def test_csv_with_any_line_ending_or_utf16_without_bom():
    from starter.dossier_csv import read_dossier_ids

    mac = f"Nom;dossier_id\rSociété A;{A1}\rSociété B;{B2}\r"  # Excel for Mac: CR alone
    assert read_dossier_ids(mac.encode("cp1252")) == [A1, B2]
    for encoding in ("utf-16-le", "utf-16-be"):  # "Texte Unicode" without its BOM
        assert read_dossier_ids(f"dossier_id\r\n{E1}\r\n".encode(encoding)) == [E1]


def test_what_is_no_csv_is_refused_in_words():
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    with pytest.raises(DossierCsvError, match="this is an Excel workbook, not a CSV: save it as CSV"):
        read_dossier_ids(b"PK\x03\x04\x14\x00\x00\x00\x08\x00[Content_Types].xml")
    with pytest.raises(DossierCsvError, match="line 2: the file cannot be read as CSV"):
        read_dossier_ids(f'dossier_id\n"{"x" * 200_000}\n'.encode())  # csv.Error: over its field limit
    with pytest.raises(DossierCsvError, match="the file is empty"):
        read_dossier_ids(b"")


def test_rows_with_data_but_no_id_are_refused_by_line():
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    listing = (
        f"Raison sociale;SIRET;dossier_id\nA;94208093897292;{A1}\nSans id;80635139169375;\nCourt;1\n;;\n"
    )
    missing = "rows without a dossier id (fill it in, or delete the row): line 3, line 4"
    with pytest.raises(DossierCsvError) as refused:
        read_dossier_ids(listing.encode())
    assert str(refused.value) == missing  # the blank row is no data
    with pytest.raises(DossierCsvError) as both:
        read_dossier_ids(f"{listing}B;1;x\n".encode())
    assert str(both.value) == f"not dossier ids: line 6: 'x'; {missing}"


def test_the_separator_is_the_one_the_rows_agree_with():
    from starter.dossier_csv import read_dossier_ids

    # Commas in a header cell of a semicolon file, and in a quoted address.
    listing = f'Nom;Adresse (n°, rue, code postal, ville);dossier_id\nACME;"12, rue de la Paix, Paris";{A1}\n'
    assert read_dossier_ids(listing.encode()) == [A1]
    assert read_dossier_ids(f"id,Nom; prénom\n{B2},Dupont; Jean\n".encode()) == [B2]


def test_the_header_is_found_below_blank_lines_excel_sep_line_or_a_title():
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    assert read_dossier_ids(f"\r\ndossier_id\r\n{A1}\r\n".encode()) == [A1]
    assert read_dossier_ids(f"sep=;\r\nNom;dossier_id\r\nx, y;{A1}\r\n".encode()) == [A1]
    assert read_dossier_ids(f"\r\nListe des clients;;\r\nNom;dossier_id;SIRET\r\nA;{A1};1\r\n".encode()) == [
        A1
    ]
    with pytest.raises(DossierCsvError, match=r"^the dossier_id column has no values$"):
        read_dossier_ids(b"Nom;dossier_id\r\nACME;\r\n")
    with pytest.raises(DossierCsvError, match=r"^the dossier_id column \('Id dossier'\) has no values$"):
        read_dossier_ids(b"Id dossier\n")


@pytest.mark.parametrize(
    "header",
    [
        "Id dossier",
        "Identifiant du dossier",
        "Identifiant dossier",
        "ID dossier",
        "ID\u00a0Dossier",
        " identifiant\u202fdu dossier ",
        "IDENTIFIANT DU DOSSIER",
        "Dossier\u00a0ID",
    ],
)
def test_french_names_of_the_id_column(header):
    from starter.dossier_csv import read_dossier_ids

    assert read_dossier_ids(f"Nom;{header}\nSociété;{A1}\n".encode()) == [A1]


def test_ids_are_counted_and_deduplicated_as_the_api_reads_them(capsys):
    from starter import dossier_csv
    from starter.bulk_cli import _arguments, _ids
    from starter.dossier_csv import DossierCsvError, read_dossier_ids

    upper, braced = A1.upper(), "{" + A1.upper() + "}"
    assert read_dossier_ids(f"dossier_id\n{A1}\n{upper}\n{braced}\n".encode()) == [A1, A1, A1]
    # uuid.UUID reads these; the API (pydantic) refuses them: refused here, before sending.
    for refused in ("0000-0000-0000-0000-0000-0000-0000-0000", "{" + A1.replace("-", "") + "}"):
        assert dossier_csv.canonical_uuid(refused) is None
        with pytest.raises(DossierCsvError, match="not dossier ids: line 2"):
            read_dossier_ids(f"dossier_id\n{refused}\n".encode())
    assert _ids(_arguments([A1, upper, braced, B2, B2.upper()])) == [A1, B2]
    assert "2 dossier(s) listed more than once, each counted once: 5 ids given, 2 distinct" in (
        capsys.readouterr().out
    )


# The bulk commands against a fake API (httpx's mock transport behind the CLI's own client).

BATCH = "84788b96-0e04-45d5-9ba0-e643e8f979f2"
FINISHED = {"total": 1, "sent": 1, "skipped": 0, "failed": 0, "done": True, "eta": None}


@pytest.fixture
def fake_api(monkeypatch):
    """Serves the CLI's requests with `handler`; returns the requests made."""
    import httpx

    made: list[httpx.Request] = []
    real = httpx.Client

    def serve(handler):
        def mocked(request: httpx.Request) -> httpx.Response:
            made.append(request)
            return handler(request)

        monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(mocked), **kw))
        return made

    return serve


def bulk(*args: str, url: str = "http://127.0.0.1:8000"):
    return CliRunner().invoke(app, ["bulk", *args], env={"MANDATES_API_KEY": "mk_x", "MANDATES_API_URL": url})


def test_a_lost_answer_says_the_batch_may_have_started(fake_api):
    import httpx

    for lost in (httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected")):

        def api(request, lost=lost):
            lost.request = request
            raise lost

        fake_api(api)
        result = bulk("send", A1)
        assert result.exit_code == 3, result.output
        assert "cannot reach" not in result.output and "the batch may have started" in result.output.lower()
        assert "Sending the same ids again is safe" in result.output
    fake_api(lambda request: (_ for _ in ()).throw(httpx.ConnectTimeout("timed out", request=request)))
    unreachable = bulk("send", A1)
    assert (
        unreachable.exit_code == 2 and "cannot reach the API at http://127.0.0.1:8000" in unreachable.output
    )


def test_watch_gives_up_on_an_api_that_never_answered(fake_api, monkeypatch):
    import httpx

    from starter import bulk_cli

    def no_retry(seconds):
        raise AssertionError("retried an API that never answered")

    monkeypatch.setattr(bulk_cli.time, "sleep", no_retry)
    made = fake_api(lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)))
    wrong_port = bulk("watch", BATCH)
    assert wrong_port.exit_code == 2 and "cannot reach the API" in wrong_port.output
    for url in ("127.0.0.1:8000", "htp://127.0.0.1:8000", "http://"):  # fatal before any request
        wrong_url = bulk("watch", BATCH, url=url)
        assert wrong_url.exit_code == 2 and "is no API address" in wrong_url.output, url
    assert len(made) == 1


def test_watch_checks_the_id_and_the_first_answer_before_any_bar(fake_api):
    made = fake_api(
        lambda request: httpx_response(404, {"title": "Not Found", "detail": "no such bulk send"})
    )
    malformed = bulk("watch", "84788b96-0e04")
    assert malformed.exit_code == 2 and "is no bulk send id" in malformed.output and not made
    unknown = bulk("watch", BATCH)
    assert unknown.exit_code == 1 and "404 no such bulk send" in unknown.output
    assert "Mandates" not in unknown.output  # no empty progress before the error
    fake_api(lambda request: httpx_response(401, {"title": "Unauthorized", "detail": "invalid API key"}))
    wrong_key = bulk("watch", BATCH.upper())
    assert wrong_key.exit_code == 1 and "Mandates" not in wrong_key.output
    assert made[-1].url.path == f"/v1/bulk-sends/{BATCH}"  # canonical


def httpx_response(status: int, body: dict):
    import httpx

    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def test_the_reattach_command_works_from_anywhere_and_keeps_the_api_url(fake_api):
    import sys

    fake_api(lambda request: httpx_response(202, {"id": BATCH, "total": 1}))
    elsewhere = bulk("send", A1, "--detach", url="http://10.1.2.3:8000/v1")
    assert elsewhere.exit_code == 0, elsewhere.output
    lines = elsewhere.output.splitlines()
    assert (
        f"Follow it with: {sys.executable} -m starter.cli bulk watch {BATCH} --api-url http://10.1.2.3:8000/v1"
        in lines
    )
    assert "  with the firm's API key in MANDATES_API_KEY (or --api-key)" in lines
    assert "mk_x" not in elsewhere.output
    here = bulk("send", A1, "--detach")  # the default address too: another shell may lack API_PORT
    from starter.api_client import default_api_url

    default = default_api_url()
    assert f"Follow it with: {sys.executable} -m starter.cli bulk watch {BATCH} --api-url {default}" in (
        here.output.splitlines()
    )


def ready_then_batch(pages: dict):
    """The API of `bulk send --ready`: the ready dossiers' ids in `pages` (by cursor), then the batch."""
    import json

    def api(request):
        if request.method == "GET":
            assert request.url.params["status"] == "ready_for_mandate", request.url
            ids, next_cursor = pages[request.url.params.get("cursor")]
            return httpx_response(200, {"items": [{"id": i} for i in ids], "next_cursor": next_cursor})
        return httpx_response(202, {"id": BATCH, "total": len(json.loads(request.content)["dossier_ids"])})

    return api


def test_ready_sends_every_dossier_ready_for_a_mandate_page_after_page(fake_api):
    import json

    pages = {None: ([A1], "c2"), "c2": ([B2], None)}  # the list's pages, as its cursor links them
    made = fake_api(ready_then_batch(pages))
    sent = bulk("send", "--ready", "--detach")
    assert sent.exit_code == 0, sent.output
    assert json.loads(made[-1].content) == {"dossier_ids": [A1, B2]}
    assert f"Bulk send {BATCH}: 2 dossier(s)" in sent.output
    pages[None] = ([], None)
    nothing = bulk("send", "--ready")
    assert nothing.exit_code == 0 and "No dossier is ready_for_mandate" in nothing.output
    assert made[-1].method == "GET"  # no empty batch
    both = bulk("send", "--ready", A1)
    assert both.exit_code == 2 and "--ready chooses the dossiers itself" in both.output


def listed_dossier(dossier_id: str, name: str, rep: bool) -> dict:
    person = {
        "first_name": "Hélène",
        "last_name": "Dupré",
        "email": "helene@client.example",
        "position": "Gérante",
    }
    return {
        "id": dossier_id,
        "name": name,
        "siret": "73282932000074" if rep else None,
        "legal_representative": person if rep else None,
        "einvoicing_status": "ready_for_mandate" if rep else "missing_information",
        "mandate": {"status": "draft"} if rep else None,
    }


def test_the_client_list_on_screen_and_as_a_csv_that_bulk_send_takes_back(fake_api, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from starter import cli_table
    from starter.dossier_csv import read_dossier_ids

    pages = {
        None: ([listed_dossier(A1, "Société; Fils", True)], "c2"),
        "c2": ([listed_dossier(B2, "=HYPERLINK(1)", False)], None),
    }

    def api(request):
        page, next_cursor = pages[request.url.params.get("cursor")]
        return httpx_response(200, {"items": page, "next_cursor": next_cursor})

    made = fake_api(api)
    env = {"MANDATES_API_KEY": "mk_x"}
    shown = CliRunner().invoke(app, ["dossiers", "list"], env=env)  # piped: tab-separated lines
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "dossier_id\tname\tsiret\tlegal_representative\tposition\temail\tstatus\tmandate",
        f"{A1}\tSociété; Fils\t73282932000074\tHélène Dupré\tGérante\thelene@client.example"
        "\tready_for_mandate\tdraft",
        f"{B2}\t=HYPERLINK(1)\t\t\t\t\tmissing_information\t",
    ]
    assert made[0].url.params["archived"] == "false"
    # A table from 140 columns of terminal on, names whole and the e-mail left to the lines and the
    # CSV; narrower, the same lines as piped rather than a table cut to a few letters a cell.
    for width, table in ((140, True), (120, False)):
        screen = io.StringIO()
        terminal = Console(file=screen, width=width, force_terminal=True, color_system=None)
        monkeypatch.setattr(cli_table, "console", terminal)
        listed = CliRunner().invoke(app, ["dossiers", "list"], env=env)
        assert ("┃" in screen.getvalue()) == table, width
        if table:
            assert "Société; Fils" in screen.getvalue() and "Hélène Dupré" in screen.getvalue()
            assert "helene@client.example" not in screen.getvalue()
        else:
            assert "Hélène Dupré\tGérante\thelene@client.example" in listed.output
    out = tmp_path / "clients.csv"
    args = [
        "dossiers",
        "list",
        "--status",
        "ready_for_mandate",
        "--status",
        "mandate_expired",
        "--csv",
        str(out),
    ]
    exported = CliRunner().invoke(app, [*args, "--archived"], env=env)
    assert exported.exit_code == 0 and "2 dossier(s) written to" in exported.output, exported.output
    assert made[-1].url.params.get_list("status") == ["ready_for_mandate", "mandate_expired"]
    assert made[-1].url.params["archived"] == "true"
    CliRunner().invoke(app, ["dossiers", "list", "--mandate-status", "failed"], env=env)
    assert made[-1].url.params.get_list("mandate_status") == ["failed"]
    assert out.read_bytes().startswith("\ufeffdossier_id;name;".encode())  # what French Excel opens
    assert '"Société; Fils"' in out.read_text(encoding="utf-8-sig")
    assert ";'=HYPERLINK(1);" in out.read_text(encoding="utf-8-sig")  # text for Excel, not a formula
    assert ";732 829 320 00074;" in out.read_text(encoding="utf-8-sig")  # text, not 7.32829E+13
    assert read_dossier_ids(out.read_bytes()) == [A1, B2]
    printed = CliRunner().invoke(app, ["dossiers", "list", "--csv", "-"], env=env)  # for a script
    assert printed.exit_code == 0 and printed.output == out.read_text(encoding="utf-8-sig").replace(
        "\r\n", "\n"
    )
    pages[None] = ([], None)
    nothing = CliRunner().invoke(app, ["dossiers", "list"], env=env)  # piped: the header, no rows
    assert nothing.exit_code == 0 and nothing.output.splitlines() == [shown.output.splitlines()[0]]
    fake_api(
        lambda request: httpx_response(
            401, {"title": "Unauthorized", "detail": "a valid API key is required"}
        )
    )
    refused = CliRunner().invoke(app, ["dossiers", "list"], env=env)
    assert refused.exit_code == 1 and "401 a valid API key is required" in refused.output


def test_ready_takes_the_10000_oldest_and_says_what_to_do_for_the_rest(fake_api):
    import json

    ids = [f"00000000-0000-4000-8000-{n:012x}" for n in range(11_000)]
    pages = {None: (ids[:6000], "c2"), "c2": (ids[6000:], "c3"), "c3": ([], None)}
    made = fake_api(ready_then_batch(pages))
    sent = bulk("send", "--ready", "--detach")
    assert sent.exit_code == 0, sent.output
    assert json.loads(made[-1].content)["dossier_ids"] == ids[:10_000]
    assert [r.method for r in made] == ["GET", "GET", "POST"]  # no page read past the 10,000th
    assert (
        "this batch takes the 10000 oldest" in sent.output
        and "once this batch's dossiers show mandate_pending" in sent.output
    )


def test_a_firms_own_list_with_sirets_and_no_ids_sends_its_dossiers(fake_api, tmp_path):
    import json

    from starter.dossier_csv import SIRET, ClientList, read_client_list

    # A client without a SIRET yet (line 4): left out and named, not a reason to refuse the file.
    export = "Raison sociale;N° SIRET\nACME;732 829 320 00074\nInconnue;55208131700011\nAsso;\n"
    export += "Bis;73282932000074\n"
    assert read_client_list(export.encode("cp1252")) == ClientList(
        SIRET, ["73282932000074", "55208131700011", "73282932000074"], ("line 4",)
    )
    clients = tmp_path / "export.csv"
    clients.write_text(export, encoding="cp1252")

    def api(request):
        if request.method == "GET":  # the firm's dossiers, to find them by SIRET
            items = [listed_dossier(A1, "ACME", True), listed_dossier(B2, "Sans SIRET", False)]
            return httpx_response(200, {"items": items, "next_cursor": None})
        return httpx_response(202, {"id": BATCH, "total": len(json.loads(request.content)["dossier_ids"])})

    made = fake_api(api)
    sent = bulk("send", "--csv", str(clients), "--detach")
    assert sent.exit_code == 0, sent.output
    assert json.loads(made[-1].content) == {"dossier_ids": [A1]}
    assert "1 SIRET(s) of the file match none of the firm's dossiers and are left out: 55208131700011" in (
        sent.output
    )
    assert "1 row(s) of the file have no SIRET and are left out: line 4" in sent.output
    clients.write_text("nom;siret\nInconnue;55208131700011\n", encoding="utf-8")
    none = bulk("send", "--csv", str(clients))
    assert none.exit_code == 2 and "no SIRET of the file" in none.output
    assert made[-1].method == "GET"  # no batch
    clients.write_text("nom;siret\nA;7328293200007\n", encoding="utf-8")
    short = bulk("send", "--csv", str(clients))
    assert short.exit_code == 2 and "not SIRETs (14 digits): line 2" in short.output


def test_a_watch_in_a_log_shows_its_progress_and_can_write_a_report(fake_api, tmp_path):
    missing = "the dossier is missing_information: set its siret first"
    items = [
        {"dossier_id": A1, "name": "ACME SAS", "siret": "73282932000074", "outcome": "sent", "reason": None}
        | {"mandate_id": B2},
        {"dossier_id": B2, "name": "=Dupont", "siret": None, "outcome": "skipped", "reason": missing}
        | {"mandate_id": None},
    ]
    fake_api(lambda request: httpx_response(200, {**FINISHED, "items": items, "next_cursor": None}))
    from datetime import datetime, timedelta

    from starter.bulk_cli import PARIS

    watched = bulk("watch", BATCH)
    assert watched.exit_code == 0, watched.output
    line = re.search(r"^(\d\d:\d\d:\d\d) Mandates 1/1 · sent 1 · skipped 0 · failed 0$", watched.output, re.M)
    # Stamped in Paris time, as the ETA and the stall it may show beside it.
    stamped = datetime.strptime(line[1], "%H:%M:%S")
    apart = (datetime.now(PARIS).replace(tzinfo=None) - stamped) % timedelta(days=1)  # clock times only
    assert min(apart, timedelta(days=1) - apart) < timedelta(minutes=2), line[1]
    report = tmp_path / "report.csv"
    assert bulk("watch", BATCH, "--report", str(report)).exit_code == 0
    # Skipped: named as the firm knows the client, not by its id alone.
    assert f"skipped  =Dupont (no SIRET, {B2})  {missing}" in watched.output
    assert report.read_text(encoding="utf-8-sig").splitlines() == [
        "dossier_id;name;siret;outcome;reason;mandate_id",
        f"{A1};ACME SAS;732 829 320 00074;sent;;{B2}",
        f"{B2};'=Dupont;;skipped;{missing};",  # text for Excel, not a formula
    ]


def test_without_a_terminal_progress_is_plain_lines_now_and_then(monkeypatch):
    from starter import bulk_cli

    printed: list[str] = []
    monkeypatch.setattr(bulk_cli.console, "print", lambda text, **kw: printed.append(text))
    clock = [0.0]
    lines = bulk_cli._Lines(clock=lambda: clock[0])

    def at(seconds: float, completed: int) -> None:
        clock[0] = seconds
        lines.show(total=10, completed=completed, counts=f"sent {completed} · ETA in {seconds} min")

    at(0, 0)  # the first, at once
    at(1, 1)  # a change, but too soon
    at(6, 2)  # a change, 6 s after the last line
    at(20, 2)  # the ETA alone changed
    at(36, 2)  # nothing changed for 30 s: alive
    lines.show(counts="API unreachable (ConnectError), trying again")
    clock[0] = 45
    lines.show(counts="API unreachable (ConnectError), trying again")
    assert [line.split(" ", 1)[1] for line in printed] == [
        "Mandates 0/10 · sent 0 · ETA in 0 min",
        "Mandates 2/10 · sent 2 · ETA in 6 min",
        "Mandates 2/10 · sent 2 · ETA in 36 min",
        "Mandates API unreachable (ConnectError), trying again",
    ]


def test_the_bar_leaves_room_for_the_counts_at_80_columns(monkeypatch):
    import io

    from rich.console import Console

    from starter import bulk_cli

    screen = io.StringIO()
    monkeypatch.setattr(
        bulk_cli, "console", Console(file=screen, width=80, force_terminal=True, color_system=None)
    )
    bar = bulk_cli._Bar()
    bar.show(
        total=10000,
        completed=1234,
        counts="sent 1200 · skipped 30 · failed 4 · ETA in 2 h 05 min (14:03 Paris)",
    )
    bar.close()
    shown = screen.getvalue()
    assert "1234/10000" in shown and "failed 4" in shown
