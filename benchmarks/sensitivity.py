"""Wall and CPU time of the reconstruction-sensitivity computation on a study folder (the shipped study by default).

    .venv/bin/python benchmarks/sensitivity.py [--data data] [--repeats 3] [--sample 50000]

Times what the ``sensitivity_ranges`` asset computes once its inputs are loaded: the study's arrays,
the OS placements (including the audit's exhaustive search over gap multisets), the exact dose allocations,
the seeded sample and every batched log-rank and Cox fit. Reading the CSVs and deriving ADSL/ADTTE (the
upstream assets' work) happens once, before the clock starts. Prints one line per repeat and a summary
line with the median, the load average and how many reconstructions were covered.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import polars as pl

from lms_assets.audit import sensitivity as sens
from lms_assets.records.study import load_study


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=sens.DEFAULT_SAMPLE)
    args = parser.parse_args(argv)
    adsl, adtte, registry, provenance = sens.read_study(args.data)
    cut = registry["data_cut"].drop_nulls().max()
    at_cut = adtte.filter(pl.col("DATACUT") == cut)
    window = sens.os_window(cut, load_study(args.data))
    walls = []
    for repeat in range(args.repeats):
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        study = sens.study_from_tables(adsl, at_cut, registry, window)
        result = sens.sensitivity_ranges(study, provenance, sample_size=args.sample)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        walls.append(wall)
        print(f"repeat {repeat + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s (all threads), load before {load:.2f}")
    print(
        f"sensitivity_ranges on {args.data.name}: median wall {statistics.median(walls):.2f} s over {args.repeats} repeats "
        f"on {os.cpu_count()} CPUs; {len(result.placements.gaps):,} OS placements, {result.dose_space:,} dose allocations, "
        f"{result.sample_size:,} sampled reconstructions (seed {result.seed}); {result.table.height} results"
    )


if __name__ == "__main__":
    main()
