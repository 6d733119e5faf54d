"""Helpers shared by the thin scripts in stages/: one line, not a traceback, for a UserError or an interrupt.

Stage scripts import this module before anything heavy. Outside `run_stage` (while importing, and at exit),
Ctrl-C (SIGINT) or a kill (SIGTERM) ends the process at once with one line: nothing is being written, and an
exception raised instead could land inside a callback from torch's C++ code, which aborts the process
("terminate called after throwing an instance of 'pybind11::error_already_set'"). Inside `run_stage` both
raise and unwind the stack, so temporary outputs are removed on the way out (atomic.py).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from digit_recognizer.errors import UserError


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that `finally` blocks clean up."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def _end_at_once(signum, frame) -> None:
    print("interrupted" if signum == signal.SIGINT else "terminated", file=sys.stderr, flush=True)
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)  # killed by the signal, as Python itself ends on an uncaught Ctrl-C


def _end_at_once_on_signals() -> None:
    signal.signal(signal.SIGINT, _end_at_once)
    signal.signal(signal.SIGTERM, _end_at_once)


_end_at_once_on_signals()


def peak_memory_mib() -> float:
    """This process's peak resident memory so far (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20  # KiB on Linux, bytes on macOS


PROFILE_LOG = "DIGIT_RECOGNIZER_STAGE_LOG"  # a file to which each stage appends when it started and ended


def log_profile(path: str, main_started: float) -> None:
    """Append this stage's process start, main()'s start and its end (Unix seconds) to `path` as a JSON line,
    for benchmarks/stage_overhead.py."""
    import json

    import psutil

    record = {
        "stage": " ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]),
        "created": psutil.Process().create_time(),
        "main_started": main_started,
        "ended": time.time(),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main() and end the process: status 0 at once when it returns; a UserError becomes
    `error: ...` on stderr and exit status 1, no traceback."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_terminated)
        started = time.time()
        main()
        print(f"{Path(sys.argv[0]).stem}: peak memory {peak_memory_mib():,.0f} MiB", flush=True)
        if PROFILE_LOG in os.environ:
            log_profile(os.environ[PROFILE_LOG], started)
        # The interpreter's shutdown tears down everything torch imported (~2,600 modules), a few tenths of a
        # second per stage for nothing: every output is written, closed and renamed by now (atomic_dir), and
        # stdout and stderr are flushed below, so the process ends here.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Terminated:
        print("terminated", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        _end_at_once_on_signals()
