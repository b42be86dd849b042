"""Move an alias of a deployment's registered model: `deploy-assets-promote VERSION` (uses MLFLOW_TRACKING_URI).

    deploy-assets-promote 7                          # version 7 becomes @champion
    deploy-assets-promote @challenger                # the challenger becomes @champion (one command; it wins,
                                                     # so @challenger is removed)
    deploy-assets-promote 9 --alias challenger       # version 9 becomes @challenger (scored in shadow)
    deploy-assets-promote 5 --allow-backwards --reason "v6 scores March badly"   # roll back, saying why
    deploy-assets-promote 3 --deployment green       # green's model (default: $DEPLOY_ASSETS_DEPLOYMENT_NAME, yellow)

The version is validated first (it loads, its inputs are ride features the platform computes, it answers a smoke
batch with finite numbers) and an alias never moves to a model trained for an older month than the one it holds,
unless `--allow-backwards`; a refused version leaves the alias unchanged and the command exits with status 1.
Each move is recorded on the version (MLflow tags `<alias>.promoted_by`, `.promoted_from`, `.promoted_at`,
`.reason`; `--by` defaults to the OS user) and shown on the champion's observations in the Dagster UI.
"""

import argparse
import getpass
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="registered model version, or @ALIAS for the version an alias points to")
    parser.add_argument("--alias", default=None, help="alias to move (default: champion)")
    parser.add_argument("--allow-backwards", action="store_true", help="allow moving to an older month's model")
    parser.add_argument("--reason", default="", help="why: recorded on the version with who and from which version")
    parser.add_argument("--by", default=None, help="who promotes (default: the OS user)")
    parser.add_argument("--deployment", default=None, help="whose model (a defs/<name>/defs.yaml; default yellow)")
    args = parser.parse_args(argv)

    from deploy_assets.core.errors import RegistryLookupError
    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.declared import deployment_settings
    from deploy_assets.resources import build_resources
    from deploy_assets.settings import Settings

    settings = deployment_settings(args.deployment or Settings.from_env().name)
    registry = Deployment(settings).model(build_resources(settings)["registry"])
    alias = args.alias or registry.champion_alias
    version = args.version
    if version.startswith("@"):
        resolved = registry.alias_version(version[1:])
        if resolved is None:
            sys.exit(f"{registry.model_name}@{version[1:]} does not exist ({registry.tracking_uri})")
        version = resolved
    try:
        registry.promote(
            version, alias=alias, allow_backwards=args.allow_backwards, by=args.by or getpass.getuser(),
            reason=args.reason,
        )
    except RegistryLookupError as error:
        sys.exit(f"refused: {error}")
    print(f"{registry.model_name}@{alias} → version {version} ({registry.tracking_uri})")
    if args.version[1:] == registry.challenger_alias and alias == registry.champion_alias:
        registry.remove_alias(registry.challenger_alias)
        print(f"{registry.model_name}@{registry.challenger_alias} removed: it is the champion now")


if __name__ == "__main__":
    main()
