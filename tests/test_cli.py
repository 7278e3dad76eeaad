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
    revoked = cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key[:8]])
    assert "1 key(s) revoked" in revoked.output
    assert (
        "0 key(s) revoked" in cli.invoke(app, ["firms", "revoke-keys", firm_id, "--prefix", key[:8]]).output
    )


def test_bad_siren_is_refused_with_its_reason(cli):
    refused = cli.invoke(app, ["firms", "create", "--name", "X", "--siren", "123456789"])
    assert refused.exit_code != 0 and "Luhn" in refused.output


def test_unknown_firm(cli):
    refused = cli.invoke(app, ["firms", "new-key", "00000000-0000-0000-0000-000000000000"])
    assert refused.exit_code != 0 and "no such firm" in refused.output
