# Real-server fixtures (moto S3, MLflow server, dagster-daemon) for every test module.
pytest_plugins = ["deploy_assets_tests.fixtures_servers", "deploy_assets_tests.postgres_server"]
