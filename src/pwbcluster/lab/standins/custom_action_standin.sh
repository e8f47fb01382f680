#!/usr/bin/env bash
# custom-action-standin: runs one custom action on a lab node as ParallelCluster's
# custom_action_executor.py (aws-parallelcluster-cookbook,
# cookbooks/aws-parallelcluster-environment/files/custom_action_executor/) does: the
# script fetched from S3 into a temporary file, made executable, run with the Args of the
# cluster config as its arguments; the caller puts the cfn_* variables (cfnconfig's) in
# the environment. Not done: dos2unix (the bundle's scripts have no CR; the executor
# would strip them), the executor's CloudFormation signalling.
#
# Usage: custom-action-standin s3://BUCKET/KEY [ARG...]
set -o errexit -o nounset -o pipefail

main() {
  local url="$1" script
  shift
  script="$(mktemp)"
  aws --cli-connect-timeout 10 --cli-read-timeout 60 s3 cp --only-show-errors "${url}" "${script}" \
    || { printf '[custom-action-standin] cannot download %s\n' "${url}" >&2; exit 1; }
  chmod +x "${script}"
  printf '[custom-action-standin] %s %s\n' "${url}" "$*" >&2
  exec "${script}" "$@"
}

main "$@"
