"""The code location: every model deployment declared under `deploy_assets/defs/` (a `defs.yaml` each, of the
`deploy_assets.components.ModelDeployment` type) and what they share (`defs/code_location.py`), as `dg` loads a
project's defs folder."""

from deploy_assets.declared import component_tree

defs = component_tree().build_defs()
