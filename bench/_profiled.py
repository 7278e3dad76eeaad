"""`python bench/_profiled.py OUT`: run `worker.py` with a sampling profiler of its Python threads.

Every 5 ms it takes every thread's Python stack (sys._current_frames) and, at exit (SIGTERM), writes to
OUT how the busy samples split: by thread, by what the stack contains (inclusive) and by its leaf.
Only Python frames are seen: time in the SDK's Rust core shows as idle or in the bridge call.
"""

from __future__ import annotations

import collections
import os
import runpy
import sys
import threading
import time
from pathlib import Path

ROOT = Path.cwd()  # the benchmark starts it where `python worker.py` would run
INTERVAL = 0.005

# (label, path fragment): a stack "contains" the label when any frame's file has the fragment.
INCLUSIVE = [
    ("PDF rendering (documents/, fpdf)", ("/documents/", "/fpdf/")),
    ("activities/ (our activity code)", (f"{ROOT}/activities/",)),
    ("store/ (our SQL layer)", (f"{ROOT}/store/",)),
    ("asyncpg", ("/asyncpg/",)),
    ("httpx/httpcore (YouSign client)", ("/httpx/", "/httpcore/", "/h11/")),
    ("workflow sandbox", ("/workflow_sandbox/",)),
    ("workflow instance (activations)", ("/temporalio/worker/_workflow_instance.py",)),
    ("workflows/ (our workflow code)", (f"{ROOT}/workflows/",)),
    ("payload conversion / codec", ("/temporalio/converter.py", f"{ROOT}/config/codec.py", "/cryptography/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("structlog / logging", ("/structlog/", "/logging/")),
]
IDLE_LEAVES = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),
    ("base_events.py", "_run_once"),
}


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = [str(ROOT / "worker.py")]
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    stop = threading.Event()
    me: list[int] = []
    totals: collections.Counter[str] = collections.Counter()
    busy_by_thread: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    project_frames: collections.Counter[str] = collections.Counter()
    started = time.monotonic()

    def sample() -> None:
        me.append(threading.get_ident())
        names = {}
        while not stop.is_set():
            if len(names) != threading.active_count():
                names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me[0]:
                    continue
                thread = "main (event loop)" if ident == threading.main_thread().ident else "other threads"
                totals[thread] += 1
                leaf = (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name)
                if leaf in IDLE_LEAVES:
                    continue
                busy_by_thread[thread] += 1
                files = []
                first_project = None
                f = frame
                while f is not None:
                    filename = f.f_code.co_filename
                    files.append(filename)
                    if first_project is None and filename.startswith(str(ROOT)) and "/.venv/" not in filename:
                        first_project = f"{os.path.relpath(filename, ROOT)}:{f.f_code.co_name}"
                    f = f.f_back
                joined = "\n".join(files)
                for label, fragments in INCLUSIVE:
                    if any(fragment in joined for fragment in fragments):
                        inclusive[label] += 1
                leaves[f"{leaf[0]}:{leaf[1]}"] += 1
                if first_project:
                    project_frames[first_project] += 1
            time.sleep(INTERVAL)

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    sampler.start()
    try:
        runpy.run_path(str(ROOT / "worker.py"), run_name="__main__")
    finally:
        stop.set()
        sampler.join(1)
        busy = sum(busy_by_thread.values()) or 1
        lines = [
            f"worker profile: {time.monotonic() - started:.0f}s, a sample every {INTERVAL * 1000:.0f} ms"
        ]
        for thread, n in totals.items():
            lines.append(f"  {thread}: {n} samples, {busy_by_thread[thread] / max(n, 1):.0%} busy")
        lines.append(f"busy samples {busy}; stacks containing (inclusive, overlapping):")
        lines += [f"  {n / busy:6.1%}  {label}" for label, n in inclusive.most_common()]
        lines.append("leaf frames:")
        lines += [f"  {n / busy:6.1%}  {name}" for name, n in leaves.most_common(15)]
        lines.append("innermost frame in the project's own code:")
        lines += [f"  {n / busy:6.1%}  {name}" for name, n in project_frames.most_common(15)]
        out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
