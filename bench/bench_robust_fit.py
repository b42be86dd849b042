#!/usr/bin/env python3
"""The robust built-in fit's training time beside the plain least-squares fit's, on one month, in one process.

    .venv/bin/python bench/bench_robust_fit.py                 # 3,000,000 rows, ~1 min on 2 cores
    .venv/bin/python bench/bench_robust_fit.py --rows 300000 --repeat 5

The month is generated and landed first (not timed). Then, `--repeat` times, alternating so machine load hits both
alike: the training step as duration_model runs it (the ingest step, `core.ingest.ingest_file`, storing the cleaned
month and gathering its statistics, then the fit), with the plain fit (`robust=False`: the statistics alone) and
with the robust fit (the default: the statistics and one more pass over the stored month, `DistanceBound`).
Prints the medians, the fit alone and the whole step, and their ratios measured in this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy_assets.core.batches import ParquetBatchWriter, iter_parquet_batches  # noqa: E402
from deploy_assets.core.features import CLEAN_SCHEMA  # noqa: E402
from deploy_assets.core.generate import generate_month_batches, write_month_batches  # noqa: E402
from deploy_assets.core.ingest import ingest_file  # noqa: E402
from deploy_assets.core.model import EVALUATION_COLUMNS, ZonePairDurationRegressor  # noqa: E402


def train_step(landed: str, stored: str, robust: bool) -> tuple[float, float, ZonePairDurationRegressor]:
    """(ingest seconds, fit seconds, model) of one training step."""
    start = time.perf_counter()
    with ParquetBatchWriter(stored, CLEAN_SCHEMA) as writer:
        ingested = ingest_file(landed, landed, 2024, 1, writer)
    ingested_at = time.perf_counter()
    model = ZonePairDurationRegressor.from_statistics(
        ingested.statistics, lambda: iter_parquet_batches(stored, EVALUATION_COLUMNS), robust=robust
    )
    return ingested_at - start, time.perf_counter() - ingested_at, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        landed = write_month_batches(generate_month_batches(2024, 1, args.rows), folder, 2024, 1)
        stored = os.path.join(folder, "raw_trips.parquet")
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.repeat):
            for robust in (False, True):
                ingest_s, fit_s, model = train_step(landed, stored, robust)
                runs[robust].append((ingest_s, fit_s))
        load = os.getloadavg()[0]
    median = {
        robust: (statistics.median(i for i, _ in r), statistics.median(f for _, f in r), statistics.median(i + f for i, f in r))
        for robust, r in runs.items()
    }
    print(f"{args.rows:,} rows, {model.rides_bounded_:,} rides bounded by the robust fit; medians of {args.repeat}"
          f" (1-minute load {load:.1f})")
    print(f"{'fit':8} {'ingest s':>9} {'fit s':>7} {'step s':>7}")
    for robust, name in ((False, "plain"), (True, "robust")):
        ingest_s, fit_s, step_s = median[robust]
        print(f"{name:8} {ingest_s:9.2f} {fit_s:7.3f} {step_s:7.2f}")
    print(f"robust vs plain: training step {median[True][2] / median[False][2]:.2f}× (target ≤ 1.5×),"
          f" fit alone {median[True][1] / median[False][1]:.1f}×")


if __name__ == "__main__":
    main()
