#!/bin/sh
# The one-shot `terraform` service: apply terraform/localstack (mounted read-only at /src) against LocalStack.
# Runs in a copy inside the `terraform-state` volume, where .terraform/ (the provider), the lock file and the state
# survive between `docker compose up`s. Settings come as TF_VAR_* from compose.
#
# Compose re-runs this job at every `up`, `start` and scale change. It is a no-op (a second or two) when nothing it
# depends on changed since its last successful apply: the same .tf files, the same TF_VAR_* values, and the same
# LocalStack process (its `session_id`: LocalStack keeps nothing across its own restarts, so a new session means a
# re-apply). CALI_TERRAFORM_FORCE=1 applies anyway (e.g. after deleting a resource by hand).
set -eu
src=${CALI_TF_SRC:-/src}        # the mounts; a test points these elsewhere
state=${CALI_TF_STATE:-/state}
work=$state/work
applied=$state/applied      # "<files+variables hash> <LocalStack session>" of the last successful apply
initialised=$state/init     # the .tf files' hash that `terraform init` last ran for
mkdir -p "$work"

files=$(cat "$src"/*.tf | sha256sum | cut -d' ' -f1)
settings=$( { echo "$files"; env | grep '^TF_VAR_' | sort; } | sha256sum | cut -d' ' -f1)
session=$(wget -qO- "${TF_VAR_localstack_endpoint}/_localstack/info" 2>/dev/null \
          | sed -n 's/.*"session_id": *"\([^"]*\)".*/\1/p' || true)
wanted="$settings ${session:-unknown}"
if [ -n "$session" ] && [ "${CALI_TERRAFORM_FORCE:-0}" != 1 ] && [ -f "$applied" ] \
   && [ "$(cat "$applied")" = "$wanted" ]; then
  echo "terraform: nothing changed since the last apply (same files, variables, LocalStack session $session)"
  exit 0
fi

rm -f "$applied"
rm -f "$work"/*.tf
cp "$src"/*.tf "$work"/
cd "$work"
if [ ! -d .terraform ] || [ ! -f "$initialised" ] || [ "$(cat "$initialised")" != "$files" ]; then
  # -upgrade: after a provider pin change the locked version no longer matches the constraint, and a plain
  # `init` refuses ("locked provider ... does not match configured version constraint"); this re-selects it.
  terraform init -upgrade -input=false -no-color
  echo "$files" > "$initialised"
fi
terraform apply -input=false -auto-approve -no-color
echo "$wanted" > "$applied"
