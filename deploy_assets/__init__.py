"""deploy_assets: a trip-duration model deployed as partitioned Dagster assets, a web service and a stream consumer."""
