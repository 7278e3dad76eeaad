"""Recorded histories replay against today's workflow code: a change breaking determinism fails here."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.helpers import TEST_CONVERTER
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded():
    assert HISTORIES, "record them with RECORD_HISTORIES=1 pytest tests/test_integration.py"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=list(WORKFLOWS), data_converter=TEST_CONVERTER).replay_workflow(history)
