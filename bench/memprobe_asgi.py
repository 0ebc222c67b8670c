"""The example project's ASGI application with memory probes, for telling a leak from warm-up in bench/soak.py.

``daphne bench.memprobe_asgi:application`` (``bench/soak.py --probe``). Every
``TRACE_INTERVAL`` seconds (30) a thread appends to
``$TRACE_DIR/trace-<pid>.txt`` the process's RSS, the sizes of the
per-process registries that hold per-connection or per-call state, and, with
``TRACE_FRAMES`` > 0 (tracemalloc on; it slows the process and its traces
take memory of their own), the Python heap as traced and the 15 source lines
whose allocations grew most since the first snapshot after ``TRACE_WARMUP``
seconds (60), so warm-up is not counted as growth.

On SIGUSR1 it writes the RSS, then runs a full ``gc.collect()`` and writes
the RSS again, then ``malloc_trim(0)`` (glibc) and writes it once more:
memory that a full collection gives back was garbage waiting for one (the
GC tuning makes them rare); memory that only the trim gives back was freed
but kept by the allocator (fragmentation, not a leak); what neither gives
back is live.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
import time
import tracemalloc

FRAMES = int(os.environ.get("TRACE_FRAMES", "0"))
if FRAMES:
    tracemalloc.start(FRAMES)

from project.asgi import application  # noqa: E402

__all__ = ["application"]

INTERVAL = float(os.environ.get("TRACE_INTERVAL", "30"))
WARMUP = float(os.environ.get("TRACE_WARMUP", "60"))
FILTERS = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
PATH = os.path.join(os.environ.get("TRACE_DIR", "."), f"trace-{os.getpid()}.txt")
STARTED = time.monotonic()


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def registries() -> dict[str, int]:
    """Sizes of the per-process maps that hold per-connection or per-call state (read from another thread: approximate)."""
    from streaming_app.connection_limits import admissions
    from streaming_app.metrics import metrics
    from streaming_app.monitor import monitor
    from streaming_app.revocation import guard
    from streaming_app.runner import CallRunner
    from streaming_app.transports.websocket import StreamConsumer

    return {
        "guard users": len(guard._by_user),
        "admissions": len(admissions._held),
        "consumers": len(StreamConsumer.instances),
        "runners": len(CallRunner.running),
        "monitor calls": len(monitor.calls),
        "history queued": len(monitor.finished),
        "metrics methods": len(metrics.methods),
    }


def write(text: str) -> None:
    with open(PATH, "a") as out:
        out.write(text)


def dump_forever() -> None:
    baseline: tracemalloc.Snapshot | None = None
    while True:
        time.sleep(INTERVAL)
        elapsed = time.monotonic() - STARTED
        line = f"== {elapsed:.0f}s rss {rss_mib():.1f} MiB gc counts {gc.get_count()} registries {registries()}"
        if not FRAMES:
            write(line + "\n")
            continue
        snapshot = tracemalloc.take_snapshot().filter_traces(FILTERS)
        current, _ = tracemalloc.get_traced_memory()
        lines = [f"{line} traced {current / 2**20:.1f} MiB\n"]
        if baseline is None:
            if elapsed >= WARMUP:
                baseline = snapshot
        else:
            lines += [f"  {stat}\n" for stat in snapshot.compare_to(baseline, "lineno")[:15]]
        write("".join(lines))


def collect_and_trim(signum: int, frame: object) -> None:
    before = rss_mib()
    found = gc.collect()
    collected = rss_mib()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    trimmed = rss_mib()
    write(
        f"== SIGUSR1 at {time.monotonic() - STARTED:.0f}s: rss {before:.1f} MiB, after gc.collect() "
        f"{collected:.1f} MiB ({found} unreachable objects), after malloc_trim(0) {trimmed:.1f} MiB\n"
    )


signal.signal(signal.SIGUSR1, collect_and_trim)
threading.Thread(target=dump_forever, name="memory probe", daemon=True).start()
