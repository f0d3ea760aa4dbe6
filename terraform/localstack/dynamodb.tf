# The consumer's own state (consumer/state/dynamodb.py), shared by every shard and worker. Hash key `pk`; items
# expire through `expires_at`. One table, items by prefix:
#   budget#<destination>#<slot>   the alert budget (THROTTLE_MAX_PER_MINUTE slots, each its last send time)
#   fp#<fingerprint>              the dedup claim (webhook mode) or the incident (Web API mode: root channel/ts,
#                                 counts, open|quiet, per-shard positions counted, thread samples per minute)
#   sent#<event key>              one message's send claim and record (idempotency across re-reads)
#   digest#<destination>#<n>      the application-wide digest of interval n (counts per service and template)
#   hwm#<shard>                   the shard's high-water mark of ended events
resource "aws_dynamodb_table" "state" {
  name         = "${var.app_name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
}

# Silences (consumer/silence): `python -m consumer.silence add|list|expire`; every processor re-reads them within
# CALI_SILENCE_REFRESH_SECONDS. Hash key `id`; an ended silence is removed a week later through `expires_at`.
resource "aws_dynamodb_table" "silences" {
  name         = "${var.app_name}-silences"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
}

# Not declared here: the KCL's tables. `<app_name>` (leases and checkpoints) is created by the consumer's launcher
# (`python -m localmode daemon`, localmode/resources.py seed_leases) before the KCL's first start, with one lease
# per shard, to skip the KCL's random 1-30 s wait on an empty table; the KCL then adds its GSI
# LeaseOwnerToLeaseKeyIndex itself. `<app_name>-CoordinatorState` and `<app_name>-WorkerMetricStats` are the KCL's
# own, created at its first start. The KCL migrates these tables itself (KCL 2 -> 3 added the GSI and the two extra
# tables): declaring them here would make Terraform and the KCL fight over them on every KCL upgrade.
