resource "aws_kinesis_stream" "logs" {
  name             = var.stream_name
  shard_count      = var.shard_count
  retention_period = 24

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
}
