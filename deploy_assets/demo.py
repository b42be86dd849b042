"""The main job on the embedded default: generate two months, materialize one month end to end, show the result.

    deploy-assets-demo [--month 2024-02] [--rows 200000]

Runs go to the Dagster instance in `$DAGSTER_HOME` (default `.data/dagster_home`, configured by the repo's
dagster.yaml), so `scripts/dev.sh` shows them in the UI afterwards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy_assets.settings import REPO_ROOT, dagster_home


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME, or a folder under .data/ whose dagster.yaml is the repo's own."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and (REPO_ROOT / "dagster.yaml").exists():
        config.symlink_to(REPO_ROOT / "dagster.yaml")
    return home


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", default="2024-02", help="month to score (YYYY-MM); the month before trains")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per generated month")
    args = parser.parse_args(argv)
    home = ensure_dagster_home()

    import dagster as dg

    from deploy_assets.assets.landing import landing_observation, sort_landing
    from deploy_assets.core.generate import generate_month, write_month
    from deploy_assets.core.months import Month
    from deploy_assets.deployment import build_definitions
    from deploy_assets.partitions import Months
    from deploy_assets.settings import Settings

    settings = Settings.from_env()
    defs = build_definitions(settings)
    scored = Month.parse(args.month)
    score_key, train_key = scored.key, scored.previous.key
    year, month = scored.pair

    resources = defs.resources
    landing_uri = resources["landing"].uri
    for y, m in (scored.previous.pair, scored.pair):
        print("generated", write_month(generate_month(y, m, args.rows), landing_uri, y, m))

    instance = dg.DagsterInstance.from_config(str(home))
    # The files landed: record them as the landing sensor would, so the daemon started later by
    # `scripts/dev.sh` sees nothing new and re-runs nothing.
    landing = resources["landing"]
    listing = sort_landing(landing.list_files(), Months.of(settings), landing.tlc_dataset)
    for key in (train_key, score_key):
        instance.report_runless_asset_event(landing_observation(key, listing.months[key]))
    job = defs.resolve_job_def("month_end_to_end")
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    # The model for M trains on M-1, so M-1's raw trips (and training statistics) come first; then all of M.
    ingest_only = [dg.AssetKey("raw_trips"), dg.AssetKey("trip_statistics")]
    for key, selection in ((train_key, ingest_only), (score_key, None)):
        result = job.execute_in_process(
            partition_key=key, instance=instance, asset_selection=selection, run_config=quiet, raise_on_error=False
        )
        if not result.success:
            raise SystemExit(f"materializing {key} failed: see the run log above")

    store = resources["predictions"]
    predictions = store.read_month(year, month)
    print(f"\nPredictions for {score_key}: {store.month_path(year, month)} ({predictions.num_rows} rides)")
    print(predictions.slice(0, 5).to_pandas().to_string(index=False))
    print(f"\nSQL table trip_predictions in {resources['warehouse'].display_url}")
    print(f"Dagster runs are in {home}: `bash scripts/dev.sh` opens them in the UI.")


if __name__ == "__main__":
    main()
