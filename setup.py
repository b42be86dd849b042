import sys

from setuptools import find_packages, setup

# The slim runtime of the web service, the stream consumer and the Lambda: deploy_assets.core + .serving, no
# Dagster. `python setup.py --serving-requirements > serving.txt && pip install -r serving.txt &&
# pip install --no-deps .` installs exactly this (the `serving` extra names the same set).
SERVING_REQUIRES = [
    "numpy>=1.26",
    "pandas>=2.2",
    "pyarrow>=17",
    "scikit-learn>=1.5",
    "mlflow>=3.5,<4",
    "boto3",
    "fastapi>=0.115",
    "uvicorn[standard]>=0.30",
    "pydantic>=2.7",
    "tzdata",  # zoneinfo's America/New_York where the OS has no tz database (slim images)
]
if sys.argv[1:] == ["--serving-requirements"]:
    print("\n".join(SERVING_REQUIRES))
    sys.exit(0)

setup(
    name="deploy_assets",
    version="0.1.0",
    description="NYC taxi trip-duration model deployed as partitioned Dagster assets, backed by MLflow and S3.",
    packages=find_packages(exclude=["deploy_assets_tests", "deploy_assets_tests.*"]),
    # The deployments the code location loads (deploy_assets/defs/<name>/defs.yaml), in the wheel too.
    package_data={"deploy_assets": ["defs/*/defs.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        *SERVING_REQUIRES,  # deploy_assets.core and deploy_assets.serving (boto3 among them)
        "dagster==1.13.*",
        "dagster-webserver==1.13.*",
        "dagster-aws>=0.29,<0.30",
        "dagster-postgres>=0.29,<0.30",  # production instance storage (deploy/dagster.prod.yaml)
        "psycopg2-binary>=2.9",  # the predictions table on PostgreSQL
        "duckdb>=1.1",
        "universal-pathlib>=0.2",
        # s3fs backs UPath("s3://...") for the IO manager; installed together with boto3 (in SERVING_REQUIRES,
        # the same pip resolve) so that pip resolves one botocore both accept (see README, "Dependencies").
        "s3fs>=2025.1",
        "sqlalchemy<2.1",
    ],
    extras_require={
        "serving": SERVING_REQUIRES,
        # The Lambda runtime interface client: the serving image's entry point on AWS Lambda (terraform/lambda.tf).
        "lambda": ["awslambdaric>=3,<5"],
        "dev": [
            "pytest>=8",
            "pytest-timeout",
            "pytest-xdist>=3",  # scripts/test.sh spreads the suite over worker processes (most tests wait on servers)
            "hypothesis>=6",  # property tests of core values (Month)
            "dagster-dg-cli==1.13.*",  # `dg list defs` / `dg check defs` on the project (pyproject.toml's [tool.dg])
            "moto[server]>=5",
            "python-hcl2>=8,<9",
            "httpx>=0.27",
            "schemathesis>=4,<5",
            "flask>=3",  # the zoomcamp-style baseline in bench/bench_web.py
            "gunicorn>=22",
        ],
    },
    entry_points={
        "console_scripts": [
            "deploy-assets-generate=deploy_assets.core.generate:main",
            "deploy-assets-demo=deploy_assets.demo:main",
            "deploy-assets-promote=deploy_assets.promote:main",
            "deploy-assets-web=deploy_assets.serving.web:main",
            "deploy-assets-stream=deploy_assets.serving.stream:main",
            "deploy-assets-score-month=deploy_assets.score_month:main",
        ],
    },
)
