"""How long `rag-explorer --help` takes to start (target ≤ 300 ms), median of N runs.

    python bench/cli_startup.py [--runs 15]

Runs the installed console script in fresh processes; also shows `python -c pass` for the floor.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    exe = shutil.which("rag-explorer") or str(
        __import__("pathlib").Path(sys.executable).with_name("rag-explorer")
    )
    floor = timed([sys.executable, "-c", "pass"], args.runs)
    help_ms = timed([exe, "--help"], args.runs)
    ask_help = timed([exe, "ask", "--help"], args.runs)
    print(f"python -c pass        median {statistics.median(floor):6.1f} ms")
    print(f"rag-explorer ask -h   median {statistics.median(ask_help):6.1f} ms")
    print(f"rag-explorer --help   median {statistics.median(help_ms):6.1f} ms  max {max(help_ms):6.1f} ms")
    print(f"help_ms_median={statistics.median(help_ms):.1f} target_ms=300")


if __name__ == "__main__":
    main()
