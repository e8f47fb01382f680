#!/usr/bin/env bash
# compute-node.sh: OnNodeConfigured on each compute node.
#
# Installs nothing: the image already holds Workbench's session components, R, Python,
# Quarto, Apptainer and, on GPU instances, the driver. This script only reports what the
# node found (shared Workbench storage, GPUs, Apptainer for container sessions) so a
# broken image shows up in the node's log rather than in a user's session.
#
# Usage: compute-node.sh --env-uri s3://BUCKET/PREFIX/cluster/node.env
# Needs: aws CLI (in the AMI). Safe to re-run: it changes nothing on the node.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="compute-node"
PWB_HOME="${PWB_HOME:-/opt/pwbcluster}"

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

parse_args() {
  ENV_URI=""
  while (($#)); do
    case "$1" in
      --env-uri) ENV_URI="${2:-}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
  done
  [[ "${ENV_URI}" =~ ^s3://[a-z0-9.-]+/.+/node\.env$ ]] || die "--env-uri s3://BUCKET/PREFIX/node.env is required"
}

# fetch_bundle: copy the bucket's cluster/ prefix (one bounded call) to
# ${PWB_HOME}/cluster, swapped in whole (files removed from the bucket go away too), and
# only if the copy is whole and of one upload: every file SHA256SUMS lists matches it,
# and no other file is there (a partial, stale or planted object stops the node). Nothing
# fetched is sourced before that. Write access to the bucket's cluster/ prefix is the
# trust boundary: ParallelCluster fetches this script itself from there, so no digest
# this script checks could protect against a writer of that prefix, and none is passed
# in the custom actions' Args (pcluster cannot update those on the head and login nodes:
# every node-file change would need a new cluster). No node role can write the prefix
# (tests/stacks/test_policies.py); only the deployer can. The same function is in
# every entry script (tests/cluster/test_bundle_integrity.py keeps the copies identical).
fetch_bundle() {
  local new="${PWB_HOME}/cluster.new" listed found
  mkdir -p "${PWB_HOME}"
  rm -rf "${new}"
  aws --cli-connect-timeout 10 --cli-read-timeout 60 s3 cp --recursive --only-show-errors \
    "${ENV_URI%/node.env}/" "${new}/" || die "cannot fetch the node scripts from ${ENV_URI%/node.env}/"
  [[ -f "${new}/SHA256SUMS" ]] || die "the bundle has no SHA256SUMS: refusing to run it"
  (cd "${new}" && sha256sum --check --strict --quiet SHA256SUMS >&2) \
    || die "a file of the bundle does not match SHA256SUMS: refusing to run it"
  listed="$(sed 's/^[0-9a-f]\{64\}  //' "${new}/SHA256SUMS" | LC_ALL=C sort)"
  found="$(cd "${new}" && find . -mindepth 1 ! -type d ! -path ./SHA256SUMS -printf '%P\n' | LC_ALL=C sort)"
  [[ "${listed}" == "${found}" ]] || die "the bundle holds files SHA256SUMS does not list: refusing to run it"
  rm -rf "${PWB_HOME}/cluster"
  mv "${new}" "${PWB_HOME}/cluster"
}

bootstrap() {
  fetch_bundle
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "${PWB_HOME}/cluster/lib/common.sh"
  load_env "${PWB_HOME}/cluster/node.env"
}

# report_node: what the image provides here; warnings only.
report_node() {
  if [[ -d "${WORKBENCH_SHARED_DIR:-/opt/rstudio-shared}/shared-storage" ]]; then
    log "Workbench shared storage mounted at ${WORKBENCH_SHARED_DIR}"
  else
    warn "Workbench shared storage ${WORKBENCH_SHARED_DIR:-} is not mounted yet"
  fi
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    log "GPUs: $(nvidia-smi -L | wc -l) found ready"
  else
    log "no GPU driver or no GPU on this node"
  fi
  if [[ "${CONTAINER_SESSIONS:-false}" == "true" ]] && ! command -v apptainer >/dev/null 2>&1; then
    warn "container sessions are on but apptainer is not in the image"
  fi
}

main() {
  trap 'printf "[%s] ERROR: a command failed near line %s\n" "${SCRIPT_NAME}" "${LINENO}" >&2' ERR
  parse_args "$@"
  bootstrap
  report_node
  log "compute node ready (nothing installed)"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
