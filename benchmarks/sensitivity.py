"""Wall and CPU time of the reconstruction-sensitivity computation on a study folder (the shipped study by default).

    .venv/bin/python benchmarks/sensitivity.py [--data data] [--repeats 3] [--sample 50000]

Times what the ``sensitivity_ranges`` asset computes once its inputs are loaded: the study's arrays,
the OS placements (including the audit's exhaustive search over gap multisets), the exact dose allocations,
the seeded sample and every batched log-rank and Cox fit. Reading the CSVs and deriving ADSL/ADTTE (the
upstream assets' work) happens once, before the clock starts. Prints one line per repeat and a summary
line with the median, the load average and how many reconstructions were covered; then the time of a cache hit
(the key of the inputs and code, and reading the stored result), what an unchanged study costs the asset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from lms_assets.audit import sensitivity as sens
from lms_assets.audit import sensitivity_cache
from lms_assets.audit.sensitivity_inputs import read_study
from lms_assets.records.study import load_study


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=sens.DEFAULT_SAMPLE)
    args = parser.parse_args(argv)
    adsl, adtte, registry, provenance = read_study(args.data)
    cut = registry["data_cut"].drop_nulls().max()
    study_file = load_study(args.data)
    walls = []
    for repeat in range(args.repeats):
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        study = sens.study_at_cut(adsl, adtte, registry, cut, study_file)
        result = sens.sensitivity_ranges(study, provenance, sample_size=args.sample)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        walls.append(wall)
        print(f"repeat {repeat + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s (all threads), load before {load:.2f}")
    print(
        f"sensitivity_ranges on {args.data.name}: median wall {statistics.median(walls):.2f} s over {args.repeats} repeats "
        f"on {os.cpu_count()} CPUs; {len(result.placements.gaps):,} OS placements, {result.dose_space:,} dose allocations, "
        f"{result.sample_size:,} sampled reconstructions (seed {result.seed}); {result.table.height} results"
    )
    with tempfile.TemporaryDirectory() as folder:
        key = sensitivity_cache.cache_key(study, provenance, args.sample, sens.DEFAULT_SEED, sensitivity_cache.code_version())
        sensitivity_cache.store(Path(folder), key, result)
        wall, cpu = time.perf_counter(), time.process_time()
        study = sens.study_at_cut(adsl, adtte, registry, cut, study_file)
        key = sensitivity_cache.cache_key(study, provenance, args.sample, sens.DEFAULT_SEED, sensitivity_cache.code_version())
        cached, found = sensitivity_cache.load(Path(folder), key)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cached is not None and cached.table.equals(result.table), found
    print(f"cache hit (the study's arrays, the key and the stored result read back): wall {wall:.3f} s, CPU {cpu:.3f} s")


if __name__ == "__main__":
    main()
