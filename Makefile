# Deployment checks. The test suite runs the same checks: deploy_assets_tests/test_terraform_static.py, test_terraform_apply.py, test_checkov.py.
CHECKOV ?= .venv-checkov/bin/checkov
# A local provider mirror (this machine image has one) lets `terraform init` work without the registry.
TF_PLUGIN_DIR ?= $(wildcard /opt/tf-plugins)

.PHONY: tf-fmt tf-validate checkov docker-build lock deploy-aws

## terraform fmt -check (offline)
tf-fmt:
	terraform fmt -check -recursive terraform

## terraform validate: needs the AWS provider, from TF_PLUGIN_DIR if present, else downloaded (network)
tf-validate:
	terraform -chdir=terraform init -backend=false -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR))
	terraform -chdir=terraform validate

## checkov over terraform/ (defaults and prod.tfvars) and the Dockerfile (offline; checkov lives in .venv-checkov)
checkov:
	$(CHECKOV) --directory terraform --framework terraform --compact --quiet --skip-download
	$(CHECKOV) --directory terraform --framework terraform --var-file terraform/envs/prod.tfvars --compact --quiet --skip-download
	$(CHECKOV) --file Dockerfile --framework dockerfile --compact --quiet --skip-download

## Build deploy-assets:dev and deploy-assets-serving:dev on a debootstrapped local base and check them (root, several minutes; not CI)
docker-build:
	bash scripts/docker_build.sh

## Regenerate constraints.txt (the lock both images and the dev venv install; needs the package index)
lock:
	.venv/bin/python scripts/lock.py

## Deploy to the AWS account of the current credentials: make deploy-aws ENV=stg (needs MLFLOW_TRACKING_URI)
ENV ?= stg
deploy-aws:
	bash scripts/deploy_aws.sh $(ENV)
