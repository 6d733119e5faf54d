"""Helpers shared by the thin scripts in stages/: read params.yaml, turn UserError into one line and exit 1."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from digit_recognizer.errors import UserError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a UserError becomes `error: ...` on stderr and exit status 1, no traceback."""
    try:
        main()
        # The interpreter's shutdown garbage-collects everything torch imported (~2,600 modules), about
        # 1 s per stage; frozen objects are skipped. Outputs are closed by now (atomic_dir).
        gc.freeze()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
