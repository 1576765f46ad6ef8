#!/usr/bin/env python3
"""Benchmark of ollama_verify: time to verify 1 and 100 emulated endpoints.

Starts the Ollama emulator, packaged as a release like the lab's, as many
processes on 127.0.0.1. Each has its own port and models folder and the model
pulled. The benchmark then times library/ollama_verify.py's verify_endpoints
against one of them and against all of them, at several concurrency settings.
The emulator processes are stopped by their process id at the end, also after
an error.

    .venv/bin/python benchmarks/verify.py --endpoints 100 --concurrency 1 8 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# The tests and this script share the emulator helpers in tests/.
sys.path.insert(0, str(REPOSITORY / "tests"))

from local_processes import (  # noqa: E402 (tests/ is on sys.path from above)
    build_emulator_release,
    log_path,
    pull_model,
    spawn_emulator,
    stop_processes,
    wait_until_serving,
)

DEFAULT_OUTPUT_DIR = REPOSITORY / "reports" / "benchmarks"
# Seconds all emulators together may take to start.
STARTUP_TIMEOUT = 120.0
# Version baked into the emulator release the benchmark builds and runs, as
# the lab does; the source tree would report 0.0.0-dev, below the minimum.
EMULATOR_VERSION = "0.32.14"
MIN_VERSION = "0.1.34"


class BenchmarkError(Exception):
    """A step of the benchmark failed; the message names the step."""


def start_emulators(
    binary: Path,
    count: int,
    work_dir: Path,
    embed_seconds: float,
    started: list[tuple[str, subprocess.Popen]],
) -> None:
    """Start `count` emulators, append them to `started` and wait for each.

    An emulator is ready when it has pulled the model. `started` lists every
    process started so far, also when this raises.
    """
    command = [sys.executable, str(binary)]
    env = {
        "OLLAMA_EMULATOR_PULL_SECONDS": "0",
        "OLLAMA_EMULATOR_EMBED_SECONDS": str(embed_seconds),
    }
    for number in range(count):
        started.append(spawn_emulator(work_dir / f"ollama-{number}", env, command))

    deadline = time.monotonic() + STARTUP_TIMEOUT
    for number, (url, process) in enumerate(started):
        if wait_until_serving(url, process, deadline - time.monotonic()):
            pull_model(url)
            continue

        if process.poll() is not None:
            log = log_path(work_dir / f"ollama-{number}", url)
            raise BenchmarkError(
                f"the emulator for {url} exited with {process.returncode}; "
                f"its log:\n{log.read_text(errors='replace')}"
            )
        raise BenchmarkError(
            f"the emulators did not all start within {STARTUP_TIMEOUT:.0f} s"
        )


def load_verify_module():
    """Import library/ollama_verify.py with the project's module_utils."""
    import ansible.module_utils

    module_utils = str(REPOSITORY / "module_utils")
    if module_utils not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(module_utils)
    sys.path.insert(0, str(REPOSITORY / "library"))
    import ollama_verify

    return ollama_verify


def time_verification(
    verify, endpoints: list[dict[str, str]], concurrency: int
) -> tuple[float, int]:
    """Return the seconds verify_endpoints took and how many endpoints passed."""
    started = time.monotonic()
    results = verify.verify_endpoints(
        endpoints,
        "nomic-embed-text",
        MIN_VERSION,
        768,
        "ollama_verify probe",
        5.0,
        60.0,
        concurrency,
    )
    elapsed = time.monotonic() - started
    return elapsed, sum(1 for result in results if result["ok"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--endpoints", type=int, default=100, help="emulators to start (default 100)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 8, 32],
        help="ollama_verify concurrency values to time (default 1 8 32)",
    )
    parser.add_argument(
        "--embed-seconds",
        type=float,
        default=0.05,
        help="service time of each emulator's embed request (default 0.05)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT_DIR / f"verify-{time.strftime('%Y%m%d-%H%M%S')}.json",
        help="JSON file for the results",
    )
    arguments = parser.parse_args()
    if arguments.endpoints < 1 or min(arguments.concurrency) < 1:
        parser.error("--endpoints and --concurrency must be 1 or more")

    verify = load_verify_module()
    rows = []
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as work_dir:
        print(f"starting {arguments.endpoints} emulators on 127.0.0.1")
        started_at = time.monotonic()
        started: list[tuple[str, subprocess.Popen]] = []
        try:
            binary = build_emulator_release(
                EMULATOR_VERSION, Path(work_dir) / "release"
            )
            start_emulators(
                binary,
                arguments.endpoints,
                Path(work_dir),
                arguments.embed_seconds,
                started,
            )
            print(f"started in {time.monotonic() - started_at:.1f} s")
            endpoints = [
                {"name": f"emulator-{number + 1}", "url": url}
                for number, (url, _) in enumerate(started)
            ]
            for count in sorted({1, len(endpoints)}):
                for concurrency in arguments.concurrency:
                    if count == 1 and concurrency != arguments.concurrency[0]:
                        continue
                    seconds, passed = time_verification(
                        verify, endpoints[:count], concurrency
                    )
                    rows.append(
                        {
                            "endpoints": count,
                            "concurrency": concurrency,
                            "seconds": round(seconds, 3),
                            "passed": passed,
                        }
                    )
                    print(
                        f"{count:4d} endpoint(s), concurrency {concurrency:3d}: "
                        f"{seconds:7.3f} s, {passed} passed"
                    )
        except (BenchmarkError, RuntimeError) as error:
            print(f"verify benchmark: error: {error}", file=sys.stderr)
            return 1
        finally:
            stop_processes([process for _, process in started], timeout=10)

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(
        json.dumps(
            {
                "embed_seconds": arguments.embed_seconds,
                "cpus": os.cpu_count(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results written to {arguments.output}")
    return 0 if all(row["passed"] == row["endpoints"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
