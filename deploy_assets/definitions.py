"""The code location: every model deployment declared under `deploy_assets/defs/` (a `defs.yaml` each, of the
`deploy_assets.components.ModelDeployment` type), as `dg` loads a project's defs folder."""

from pathlib import Path

import dagster as dg

import deploy_assets.defs

defs = dg.ComponentTree.from_module(
    defs_module=deploy_assets.defs, project_root=Path(__file__).resolve().parents[1]
).build_defs()
