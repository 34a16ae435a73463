"""Start-up time of the commands that need no network: torch is imported only where a command runs one.

Runs each command in a fresh interpreter (median of ``--repeats``), prints the table and writes
``startup.csv`` (command, seconds, torch_imported) to ``--out``.

    python benchmarks/startup.py
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _runs import REPO, write_csv

COMMANDS = [["--version"], ["--help"], ["search", "--help"], ["derive", "DARTS_V2"], ["config"],
            ["list", "{tmp}"], ["bench", "collapse", "GDAS"]]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "startup"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for command in COMMANDS:
            argv = [a.format(tmp=tmp) for a in command]
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", "import sys, romenas.cli\n"
                                       "try:\n    romenas.cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
                                       "print('TORCH', 'torch' in sys.modules)", *argv],
                                      capture_output=True, text=True)
                times.append(time.perf_counter() - started)
            torch_loaded = "TORCH True" in done.stdout
            rows.append({"command": "romenas " + " ".join(command), "seconds": round(statistics.median(times), 3),
                         "torch_imported": torch_loaded})
            print(f"{rows[-1]['command']:32s} {rows[-1]['seconds']:6.2f} s  torch imported: {torch_loaded}", flush=True)
    write_csv(out / "startup.csv", rows)


if __name__ == "__main__":
    main()
