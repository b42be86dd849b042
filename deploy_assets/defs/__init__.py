"""The deployments of the code location: one folder per deployment, each with its `defs.yaml`."""
