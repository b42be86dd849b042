#!/usr/bin/env bash
# Deploy the whole stack to the AWS account of the current credentials: nothing to edit first.
#
#   MLFLOW_TRACKING_URI=https://mlflow.my.org bash scripts/deploy_aws.sh stg     # or prod
#
# 1. the Terraform state bucket `deploy-assets-tfstate-<account id>` (created once: versioned, encrypted, private);
# 2. terraform init with that bucket (envs/<env>.s3.tfbackend holds the rest), then the two ECR repositories alone;
# 3. both images (Dockerfile targets runtime and serving) built from the lock, tagged with the git commit, pushed;
# 4. terraform apply of everything else: VPC, buckets, RDS, Dagster on ECS, the web service behind its internal
#    load balancer, the champion and shadow stream Lambdas with their Kinesis mappings.
#
# Needs: aws CLI v2, docker, terraform >= 1.10, credentials allowed to create all of that; AWS_REGION (default
# us-east-1, as in envs/*.tfvars); MLFLOW_TRACKING_URI, the tracking server the services load models from (reachable
# from the VPC). Re-running deploys the current commit (image tags are immutable: commit first).
set -euo pipefail
cd "$(dirname "$0")/.."

ENV="${1:?usage: scripts/deploy_aws.sh stg|prod}"
case "$ENV" in stg | prod) ;; *) echo "environment must be stg or prod" >&2; exit 2 ;; esac
: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the MLflow tracking server the services use}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text)"
TAG="$(git rev-parse --short=12 HEAD)"
STATE_BUCKET="deploy-assets-tfstate-${ACCOUNT_ID}"
REGISTRY="${ACCOUNT_ID}.dkr.ecr.${AWS_REGION}.amazonaws.com"
TF=(terraform -chdir=terraform)
VARS=(-var-file="envs/${ENV}.tfvars" -var "image_tag=${TAG}" -var "mlflow_tracking_uri=${MLFLOW_TRACKING_URI}")

if ! aws s3api head-bucket --bucket "$STATE_BUCKET" 2>/dev/null; then
  echo "== creating the state bucket $STATE_BUCKET"
  if [ "$AWS_REGION" = us-east-1 ]; then
    aws s3api create-bucket --bucket "$STATE_BUCKET"
  else
    aws s3api create-bucket --bucket "$STATE_BUCKET" --create-bucket-configuration "LocationConstraint=$AWS_REGION"
  fi
  aws s3api put-bucket-versioning --bucket "$STATE_BUCKET" --versioning-configuration Status=Enabled
  aws s3api put-bucket-encryption --bucket "$STATE_BUCKET" \
    --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
  aws s3api put-public-access-block --bucket "$STATE_BUCKET" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
fi

echo "== terraform init (state s3://$STATE_BUCKET, envs/$ENV.s3.tfbackend)"
"${TF[@]}" init -input=false -reconfigure -backend-config="envs/${ENV}.s3.tfbackend" -backend-config="bucket=${STATE_BUCKET}"

echo "== the image repositories first (the functions need their image to exist)"
"${TF[@]}" apply -input=false -auto-approve "${VARS[@]}" -target=aws_ecr_repository.code -target=aws_ecr_repository.serving
CODE_REPO="$("${TF[@]}" output -raw ecr_repository_url)"
SERVING_REPO="$("${TF[@]}" output -raw serving_repository_url)"

echo "== images $CODE_REPO:$TAG and $SERVING_REPO:$TAG"
aws ecr get-login-password | docker login --username AWS --password-stdin "$REGISTRY"
docker build -t "$CODE_REPO:$TAG" .
docker build --target serving -t "$SERVING_REPO:$TAG" .
docker push "$CODE_REPO:$TAG"
docker push "$SERVING_REPO:$TAG"

echo "== terraform apply ($ENV)"
"${TF[@]}" apply -input=false -auto-approve "${VARS[@]}"
"${TF[@]}" output
