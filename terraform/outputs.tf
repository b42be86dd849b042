output "ecr_repository_url" {
  description = "Push the image here: docker push <url>:<image_tag>."
  value       = aws_ecr_repository.code.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the Dagster services and run tasks."
  value       = aws_ecs_cluster.main.name
}

output "run_task_definition_family" {
  description = "Task definition family the EcsRunLauncher runs (DAGSTER_RUN_TASK_DEFINITION)."
  value       = local.run_family
}

output "bucket_names" {
  description = "Data buckets by role (landing, predictions, mlflow, dagster) and the access-log bucket."
  value       = merge({ for key, bucket in local.buckets : key => bucket.id }, { access_logs = aws_s3_bucket.access_logs.id })
}

output "kinesis_streams" {
  description = "Input and output streams of the streaming scorer, by deployment: { yellow = { ride_events, ride_predictions, shadow }, ... }."
  value = {
    for deployment in keys(var.deployments) : deployment => {
      ride_events      = aws_kinesis_stream.ride_events[deployment].name
      ride_predictions = aws_kinesis_stream.ride_predictions[deployment].name
      shadow           = aws_kinesis_stream.ride_predictions_shadow[deployment].name
    }
  }
}

output "serving_repository_url" {
  description = "Push the serving image (Dockerfile target `serving`) here: docker push <url>:<image_tag>."
  value       = aws_ecr_repository.serving.repository_url
}

output "web_url" {
  description = "The prediction services' load balancer, inside the VPC: unprefixed paths (/predict, ...) reach web_default_deployment."
  value       = local.web_url
}

output "web_deployment_urls" {
  description = "Each deployment's prediction service, by deployment: <web_url>/deployments/<name> (then /predict, /predict/batch, /ready)."
  value       = { for deployment in keys(var.deployments) : deployment => "${local.web_url}/deployments/${deployment}" }
}

output "web_default_deployment" {
  description = "The deployment the load balancer's default action serves (unprefixed paths): yellow if deployed, else the first name in sort order."
  value       = local.web_default_deployment
}

output "web_services" {
  description = "ECS service of each deployment's prediction service, by deployment (in ecs_cluster_name)."
  value       = { for deployment, service in aws_ecs_service.web : deployment => service.name }
}

output "web_api_key_secret_arn" {
  description = "Secrets Manager secret holding the X-API-Key callers of the prediction service send (null without var.web_api_key)."
  value       = one(aws_secretsmanager_secret.web_api_key[*].arn)
}

output "dagster_ui_url" {
  description = "The Dagster UI, read-only, inside the VPC; editors sign in on port 8443 (with var.dagster_oidc)."
  value       = local.dagster_ui_url
}

output "alerts_topic_arn" {
  description = "SNS topic of the failure and overdue notifications (subscribe more endpoints here)."
  value       = aws_sns_topic.alerts.arn
}

output "stream_functions" {
  description = "Stream-scoring Lambda functions by deployment, then consumer: { yellow = { champion, shadow }, ... }."
  value = {
    for deployment in keys(var.deployments) : deployment => {
      for key, consumer in local.stream_consumers : consumer.kind => aws_lambda_function.stream[key].function_name
      if consumer.deployment == deployment
    }
  }
}

output "stream_on_failure_queues" {
  description = "SQS queues receiving the batches a stream consumer gave up on (shard and sequence range), by deployment, then consumer."
  value = {
    for deployment in keys(var.deployments) : deployment => {
      for key, consumer in local.stream_consumers : consumer.kind => aws_sqs_queue.stream_on_failure[key].url
      if consumer.deployment == deployment
    }
  }
}

output "vpc_id" {
  description = "VPC of the stack (created or given)."
  value       = local.vpc_id
}

output "database_endpoint" {
  description = "Dagster Postgres endpoint (private)."
  value       = aws_db_instance.dagster.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the database master credentials (managed and rotated by RDS)."
  value       = aws_db_instance.dagster.master_user_secret[0].secret_arn
}

output "webserver_security_group_id" {
  description = "Security group of the webserver tasks."
  value       = aws_security_group.webserver.id
}

output "kms_key_arn" {
  description = "Key encrypting the stack's data at rest."
  value       = aws_kms_key.main.arn
}
