"""The operator CLI against the real (embedded) database."""

import re

import pytest
from typer.testing import CliRunner

from starter.cli import app


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    from config.settings import get_settings

    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_create_list_and_revoke(cli, db):
    created = cli.invoke(app, ["firms", "create", "--name", "Cabinet CLI", "--siren", "732 829 320"])
    assert created.exit_code == 0, created.output
    firm_id = re.search(r"created: ([0-9a-f-]{36})", created.output).group(1)
    key = re.search(r"(mk_\S+)", created.output).group(1)

    listed = cli.invoke(app, ["firms", "list"])
    assert "Cabinet CLI" in listed.output and firm_id[:8] in listed.output

    another = cli.invoke(app, ["firms", "new-key", firm_id])
    assert another.exit_code == 0 and "mk_" in another.output
    revoked = cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key])  # the leaked key itself
    assert "1 key(s) revoked" in revoked.output
    again = cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key[:8]])
    assert again.exit_code == 1 and "0 key(s) revoked" in again.output  # nothing matched: say so
    unknown = cli.invoke(app, ["firms", "revoke-keys", "00000000-0000-0000-0000-000000000000"])
    assert unknown.exit_code != 0 and "no such firm" in unknown.output


def test_names_are_printed_verbatim(cli, db):
    # Rich markup in a name must neither break the output (after the key is stored) nor be interpreted.
    created = cli.invoke(
        app, ["firms", "create", "--name", "Cabinet [/b] & [red]Fils", "--siren", "552081317"]
    )
    assert created.exit_code == 0, created.output
    assert "Cabinet [/b] & [red]Fils" in created.output and "mk_" in created.output


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

    content = (
        f"Nom;Dossier ID;SIRET\r\nSociété Générale;{A1};732 829 320 00074\r\nDupont\r\n;;\r\nB;{B2};\r\n"
    )
    assert read_dossier_ids(content.encode("cp1252")) == [A1, B2]  # short and blank rows skipped
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


def test_api_url_and_eta_as_a_user_reads_them():
    from datetime import UTC, datetime

    from starter.bulk_cli import api_base, describe_eta

    assert (
        api_base("http://127.0.0.1:8000/v1/") == api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    )
    now = datetime(2027, 1, 11, 11, 0, tzinfo=UTC)
    assert describe_eta("2027-01-11T13:05:00+00:00", now) == " · ETA in 2 h 05 min (14:05 Paris)"
    assert describe_eta("2027-01-11T11:07:00+00:00", now) == " · ETA in 7 min (12:07 Paris)"
    assert describe_eta(None, now) == ""


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
        assert _follow(http, "b1", 0.001, lambda **fields: shown.append(fields)) == done
    assert [f["counts"] for f in shown[:2]] == [
        "API unreachable (ConnectError), trying again",
        "API answered 503, trying again",
    ]
