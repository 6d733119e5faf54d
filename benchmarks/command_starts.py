"""How long each command takes to its first output, on a project with a finished `dvc repro`: the median of
3 runs of each, from the process's start to its first line (to the first page served, for `serve`).

  python benchmarks/command_starts.py path/to/project

`scores`, `compare` and `submit` import no torch (tests/test_cli.py guards it); `predict` and `serve` load
torch and every fold model before they can answer.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

COMMAND = [sys.executable, "-m", "digit_recognizer.cli"]


def first_line_seconds(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    with subprocess.Popen([*COMMAND, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        line = process.stdout.readline()
        seconds = time.perf_counter() - start
        process.stdout.read()
    if not line or process.returncode:
        raise SystemExit(f"{' '.join(args)}: no output (exit {process.returncode})")
    return seconds


def first_page_seconds(cwd: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with subprocess.Popen([*COMMAND, "serve", "--port", str(port)], cwd=cwd, stdout=subprocess.DEVNULL) as process:
        try:
            while time.perf_counter() - start < 120:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                    return time.perf_counter() - start
                except OSError:
                    time.sleep(0.05)
            raise SystemExit("serve answered nothing in 120 s")
        finally:
            process.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a project with a finished `dvc repro`")
    project = parser.parse_args().project.resolve()
    digit = np.load(project / "data" / "prepared" / "test_images.npy")[0]
    picture = Path(tempfile.mkdtemp()) / "digit.png"
    Image.fromarray(255 - digit).save(picture)  # dark ink on white paper, as a photo of a digit is
    timings = {
        "digit-recognizer --help": lambda: first_line_seconds(["--help"], project),
        "digit-recognizer scores": lambda: first_line_seconds(["scores"], project),
        "digit-recognizer compare --help": lambda: first_line_seconds(["compare", "--help"], project),
        "digit-recognizer predict digit.png": lambda: first_line_seconds(["predict", str(picture)], project),
        "digit-recognizer serve (first page)": lambda: first_page_seconds(project),
    }
    print("| command | to its first output (median of 3) |\n| --- | ---: |")
    for name, measure in timings.items():
        print(
            f"| `{name.removeprefix('digit-recognizer ')}` | {statistics.median(measure() for _ in range(3)):.2f} s |"
        )


if __name__ == "__main__":
    main()
