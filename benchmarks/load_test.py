"""Bounded load test of `digit-recognizer serve` on loopback: N requests from C concurrent clients.

Starts the server on a free port over the pipeline's trained models (run `dvc repro` first), sends real
test digits as PNG files (the page's path: decode, MNIST-style preprocessing, every fold model), and
prints latency percentiles, throughput and failures.

    python benchmarks/load_test.py [--requests 2000] [--clients 8]
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from PIL import Image

from digit_recognizer.data.prepared import load_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    digits = load_prepared().test_images[:100]
    bodies = []
    for digit in digits:
        buffer = io.BytesIO()
        Image.fromarray(255 - np.kron(digit, np.ones((10, 10), dtype=np.uint8))).save(buffer, format="PNG")
        bodies.append(buffer.getvalue())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "digit_recognizer.cli", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                httpx.get(url + "/api/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        per_client = args.requests // args.clients

        def client(index: int) -> tuple[list[float], int]:
            latencies, failures = [], 0
            with httpx.Client(base_url=url, timeout=60) as http:
                for i in range(per_client):
                    body = bodies[(index * per_client + i) % len(bodies)]
                    start = time.perf_counter()
                    response = http.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
                    latencies.append(time.perf_counter() - start)
                    failures += response.status_code != 200
            return latencies, failures

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(client, range(args.clients)))
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
    latencies = np.array([t for lat, _ in results for t in lat]) * 1000
    failures = sum(f for _, f in results)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    print(
        f"{len(latencies)} requests from {args.clients} clients in {elapsed:.1f} s: {len(latencies) / elapsed:.1f} req/s"
    )
    print(
        f"latency ms: p50 {p50:.1f}, p90 {p90:.1f}, p99 {p99:.1f}, max {latencies.max():.1f}; failed requests: {failures}"
    )


if __name__ == "__main__":
    main()
