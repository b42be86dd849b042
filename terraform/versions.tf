terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # Remote state in S3, one state per environment. The block is a partial configuration on purpose: the bucket,
  # key and region come from a per-environment file, so the same code serves stg and prod:
  #
  #   terraform -chdir=terraform init -backend-config=envs/stg.s3.tfbackend
  #   terraform -chdir=terraform plan -var-file=envs/stg.tfvars
  #
  # The state bucket itself (versioned, encrypted, public access blocked) is created once per account outside
  # this configuration. `use_lockfile` (Terraform >= 1.10) locks the state with an S3 object, no DynamoDB table.
  # For a local `terraform validate` without any backend: `terraform init -backend=false` (see the Makefile).
  backend "s3" {}
}
