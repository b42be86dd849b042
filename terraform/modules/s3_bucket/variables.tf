variable "name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for default encryption (SSE-KMS with an S3 bucket key)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving this bucket's S3 server access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix of this bucket's access logs in access_log_bucket."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed."
  type        = number
}

variable "expire_current_days" {
  description = "If set, current objects are deleted this many days after creation (for logs); null keeps them."
  type        = number
  default     = null
}
