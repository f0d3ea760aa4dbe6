output "stream_name" {
  value = aws_kinesis_stream.logs.name
}

output "stream_arn" {
  value = aws_kinesis_stream.logs.arn
}

output "shard_count" {
  value = aws_kinesis_stream.logs.shard_count
}

output "state_table" {
  value = aws_dynamodb_table.state.name
}

output "silences_table" {
  value = aws_dynamodb_table.silences.name
}

output "kcl_lease_table" {
  description = "Not Terraform's: created and seeded by the consumer's launcher at its first start, completed by the KCL (see dynamodb.tf)"
  value       = var.app_name
}
