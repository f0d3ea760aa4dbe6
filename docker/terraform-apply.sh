#!/bin/sh
# The one-shot `terraform` service: apply terraform/localstack (mounted read-only at /src) against LocalStack.
# Runs in a copy inside the `terraform-state` volume, where .terraform/ (the provider), the lock file and the state
# survive between `docker compose up`s: a re-run refreshes the state, creates what LocalStack no longer has (it
# keeps nothing across restarts), and exits 0 when all is in place. Settings come as TF_VAR_* from compose.
set -eu
work=/state/work
mkdir -p "$work"
rm -f "$work"/*.tf
cp /src/*.tf "$work"/
cd "$work"
terraform init -input=false -no-color
terraform apply -input=false -auto-approve -no-color
