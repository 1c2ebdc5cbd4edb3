"""Time ``python -c "import mmfocal"`` against ``python -c "import timm"`` in fresh processes, alternating.

Usage:
    python tools/analysis/import_benchmark.py [--pairs 15] [--python PATH]

Each round starts one process per statement, in alternating order; the report gives the median wall time of each
and the median of the per-round ratios (mmfocal / timm), which is what docs/install.md quotes.
"""

import argparse
import statistics
import subprocess
import sys
import time
from typing import Dict, List

STATEMENTS = {'mmfocal': 'import mmfocal', 'timm': 'import timm', 'torch': 'import torch'}


def wall(python: str, statement: str) -> float:
    """Seconds for one fresh interpreter to run ``statement`` and exit."""
    start = time.perf_counter()
    subprocess.run([python, '-c', statement], check=True)
    return time.perf_counter() - start


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', type=int, default=15)
    parser.add_argument('--python', default=sys.executable)
    args = parser.parse_args()
    for name, statement in STATEMENTS.items():  # warm the file cache once
        wall(args.python, statement)
    times: Dict[str, List[float]] = {name: [] for name in STATEMENTS}
    for i in range(args.pairs):
        order = list(STATEMENTS) if i % 2 == 0 else list(reversed(STATEMENTS))
        for name in order:
            times[name].append(wall(args.python, STATEMENTS[name]))
    ratios = [m / t for m, t in zip(times['mmfocal'], times['timm'])]
    for name, values in times.items():
        print(f'{STATEMENTS[name]:16s} median {statistics.median(values):.3f} s  '
              f'(min {min(values):.3f}, max {max(values):.3f})')
    print(f'mmfocal / timm: median of {args.pairs} per-round ratios {statistics.median(ratios):.3f} '
          f'(range {min(ratios):.3f}-{max(ratios):.3f})')


if __name__ == '__main__':
    main()
