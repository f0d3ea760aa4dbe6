# Defaults equal the values in the repository's .env (tests/test_compose_static.py checks that they agree);
# docker compose passes the .env values as TF_VAR_* so a change there reaches Terraform too.

variable "region" {
  description = "AWS region (.env AWS_REGION)"
  type        = string
  default     = "ap-northeast-2"
}

variable "localstack_endpoint" {
  description = "LocalStack's endpoint; http://localstack:4566 inside the compose network"
  type        = string
  default     = "http://localhost:4566"
}

variable "stream_name" {
  description = "The Kinesis stream Fluent Bit writes and the KCL reads (.env KINESIS_STREAM_NAME)"
  type        = string
  default     = "cali-log-stream"
}

variable "shard_count" {
  description = "Shards of the stream (.env CALI_STREAM_SHARDS); the KCL runs one Python processor per shard"
  type        = number
  default     = 2
}

variable "app_name" {
  description = "KCL application name (.env CALI_APP_NAME): the lease table's name and the state table's prefix"
  type        = string
  default     = "cali-consumer"
}
