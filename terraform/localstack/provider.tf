terraform {
  # The compose job runs hashicorp/terraform 1.11.4; `terraform fmt` in the tests runs 1.0.3 (PyPI wrapper).
  required_version = ">= 1.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}

# LocalStack (docker compose) or CALI's local emulator: every AWS call goes to one endpoint, with the fixed
# test/test keys LocalStack accepts. Real AWS would drop the endpoints block and these skip_* settings.
provider "aws" {
  region     = var.region
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    kinesis  = var.localstack_endpoint
    dynamodb = var.localstack_endpoint
  }
}
