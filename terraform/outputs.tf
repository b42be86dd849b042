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
  description = "Input and output streams of the streaming scorer."
  value = {
    ride_events      = aws_kinesis_stream.ride_events.name
    ride_predictions = aws_kinesis_stream.ride_predictions.name
  }
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
