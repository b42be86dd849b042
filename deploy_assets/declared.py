"""The deployments declared under `deploy_assets/defs/` (or another defs folder): the component tree `dg` loads,
and each deployment's settings, for the programs that run one deployment outside the code location (the
one-shot command, the demo, the promotion command)."""

from __future__ import annotations

import importlib
from pathlib import Path

import dagster as dg

from deploy_assets.components import ModelDeployment
from deploy_assets.settings import REPO_ROOT, Settings

DEFS_MODULE = "deploy_assets.defs"


def component_tree(defs_module: str = DEFS_MODULE, project_root: Path = REPO_ROOT) -> dg.ComponentTree:
    return dg.ComponentTree.from_module(defs_module=importlib.import_module(defs_module), project_root=project_root)


def declared_settings(tree: dg.ComponentTree | None = None) -> dict[str, Settings]:
    """Each declared deployment's settings (the environment read now), by name."""
    components = (tree or component_tree()).get_all_components(of_type=ModelDeployment)
    return {component.name: component.settings() for component in sorted(components, key=lambda c: c.name)}


def deployment_settings(name: str, tree: dg.ComponentTree | None = None) -> Settings:
    """The settings of the deployment `name`; a ValueError naming the declared ones if there is none."""
    declared = declared_settings(tree)
    if name not in declared:
        raise ValueError(f"no deployment {name!r} under defs/ (declared: {', '.join(declared) or 'none'})")
    return declared[name]
