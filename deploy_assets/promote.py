"""Move the registered model's @champion alias: `deploy-assets-promote VERSION` (uses MLFLOW_TRACKING_URI).

The same as `MlflowClient().set_registered_model_alias("trip-duration", "champion", VERSION)`.
"""

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("version", help="registered model version to make @champion")
    args = parser.parse_args(argv)

    from deploy_assets.resources import build_resources

    registry = build_resources()["registry"]
    registry.promote(args.version)
    print(f"{registry.model_name}@{registry.champion_alias} → version {args.version} ({registry.tracking_uri})")


if __name__ == "__main__":
    main()
