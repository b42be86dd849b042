"""The main job on the embedded default: for every declared deployment, generate two months of its TLC service,
materialize one month end to end (`score_month.materialize_month`), show the result.

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


def demo_month(asked, deployment):
    """The month the demo scores for a deployment: the one asked for, or, for a deployment whose months do not hold
    it (fhv: 2021), the first month it can score (the second of its range, trained on the first)."""
    months = deployment.months
    return asked if months.first < asked <= months.newest else months.first.next


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", default="2024-02", help="month to score (YYYY-MM); the month before trains")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per generated month")
    args = parser.parse_args(argv)
    home = ensure_dagster_home()

    import dagster as dg

    from deploy_assets.assets.landing import LANDING_FILE, landing_observation, sort_landing
    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.core.generate import generate_month, write_month
    from deploy_assets.core.months import Month
    from deploy_assets.declared import declared_settings
    from deploy_assets.definitions import defs
    from deploy_assets.score_month import materialize_month

    instance = dg.DagsterInstance.from_config(str(home))
    for seed, settings in enumerate(declared_settings().values()):
        deployment = Deployment(settings)
        scored = demo_month(Month.parse(args.month), deployment)
        landing, dataset = deployment.landing, deployment.dataset
        for month in (scored.previous, scored):
            table = generate_month(*month.pair, args.rows, seed=seed, dataset=dataset)
            print("generated", write_month(table, landing.uri, *month.pair, dataset=dataset))
        # The files landed: record them as the landing sensor would, so the daemon started later by
        # `scripts/dev.sh` sees nothing new and re-runs nothing.
        listing = sort_landing(landing.list_files(), deployment.months, dataset)
        for month in (scored.previous, scored):
            instance.report_runless_asset_event(
                landing_observation(deployment.key(LANDING_FILE), month.key, listing.months[month.key])
            )
        try:
            summary = materialize_month(scored.key, settings, instance)
        except RuntimeError as error:
            raise SystemExit(f"materializing {deployment.name} {scored.key} failed: {error}") from None

        predictions = deployment.predictions.read_month(*scored.pair)
        print(f"\n{settings.name}: predictions for {scored.key}: {summary['predictions_uri']} ({predictions.num_rows} rides)")
        print(predictions.slice(0, 5).to_pandas().to_string(index=False))
        print(f"{settings.name}: SQL table {settings.table} in {defs.resources['warehouse'].display_url}")
    print(f"Dagster runs are in {home}: `bash scripts/dev.sh` opens them in the UI.")


if __name__ == "__main__":
    main()
