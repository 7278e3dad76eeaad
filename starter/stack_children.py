"""One supervised child process: its own session (Ctrl-C reaches only the supervisor, which stops the
children in order), its output appended to a log file, and death with the supervisor if it is killed."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path
from typing import BinaryIO

from config.settings import PROJECT_ROOT

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec: keep it minimal
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _open_log(path: Path, argv: list[str]) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "ab")  # closed by the caller's `with`
    log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)} =====\n".encode())
    log.flush()
    return log


class Child:
    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, *, stop_timeout: float = 10.0
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.stop_timeout = stop_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Future[int] | None = None
        self.started_at = 0.0  # time.time() of the start

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def reason_given(self) -> str | None:
        """The one line a program of ours ends with when it cannot start (`worker: ...`), if any."""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_bytes()[-4096:].decode(errors="replace").strip().splitlines()
            if lines and lines[-1].startswith(f"{self.name}: "):
                return lines[-1]
        return None

    async def start(self) -> None:
        self.started_at = time.time()
        with _open_log(self.log_path, self.argv) as log:  # the child keeps its own descriptor
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.exited = asyncio.ensure_future(self.process.wait())

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the child and anything it started (its session's process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def stop(self) -> int | None:
        """SIGTERM, wait up to `stop_timeout`, then SIGKILL; leftovers of its group are killed too."""
        if self.process is None or self.exited is None:
            return None
        if self.process.returncode is None:
            self.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), self.stop_timeout)
            except TimeoutError:
                self.signal_group(signal.SIGKILL)
                await self.exited
        self.signal_group(signal.SIGKILL)
        return self.process.returncode
