#!/usr/bin/env bash
# login-node.sh: OnNodeConfigured on each login node (LoginNodes CustomActions, run once
# at boot: no cron, no polling).
#
# Installs the Workbench configuration the head node put on shared storage (identical on
# every login node), adds what is secret or per node (database password(s),
# secure-cookie-key and licence from Secrets Manager with the instance role, root-owned,
# mode 600; this node's load-balancer address; the sessions' callback address through
# the login load balancer), starts the launcher and rserver, checks Workbench's health,
# and joins the Slurm controller HA when the deployment asks for it.
#
# A failing OnNodeConfigured makes the pool replace the node forever
# (aws/aws-parallelcluster#6507), so only what truly breaks Workbench fails this script:
# no shared configuration, a database or cookie secret that cannot be read, rserver or
# the launcher not starting. The licence, the callback lookup, controller HA and the
# health check warn instead.
#
# Usage: login-node.sh --env-uri s3://BUCKET/PREFIX/cluster/node.env
# Needs: aws CLI, systemctl, curl, Workbench (all in the AMI). Installs nothing.
# Safe to re-run: files are replaced only when they differ, services restart only then.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="login-node"
PWB_HOME="${PWB_HOME:-/opt/pwbcluster}"
# How long to wait for the head node's shared configuration.
SHARED_WAIT="${SHARED_WAIT:-600}"

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
  # shellcheck source=SCRIPTDIR/lib/workbench.sh
  source "${PWB_HOME}/cluster/lib/workbench.sh"
  load_env "${PWB_HOME}/cluster/node.env"
  require_env WORKBENCH_SHARED_DIR COOKIE_KEY_SECRET_ARN DB_PASSWORD_SECRET_ARN \
    WORKBENCH_PORT LB_SCHEME LB_PORT CLUSTER_NAME
}

# configure_workbench ADDRESS: every file Workbench reads; the essential ones die on failure.
configure_workbench() {
  local address="$1"
  wait_for "${WORKBENCH_SHARED_DIR}/etc/rstudio.published" "${SHARED_WAIT}" \
    || die "the head node has not published the Workbench configuration in ${SHARED_WAIT}s"
  install_workbench_config
  write_database_conf database.conf "${DB_PASSWORD_SECRET_ARN}"
  if [[ -n "${AUDIT_DB_PASSWORD_SECRET_ARN:-}" ]]; then
    write_database_conf audit-database.conf "${AUDIT_DB_PASSWORD_SECRET_ARN}"
  fi
  write_cookie_key
  write_load_balancer "${address}"
  # The callback lookup may fail (no permission, API slow): callback_url falls back to
  # this node's own address, so rserver.conf is always complete.
  write_rserver_conf "$(callback_url "${address}")"
}

# controller_ha: backup slurmctld here (cluster/ha); never fails the node.
controller_ha() {
  [[ "${HA_CONTROLLERS:-false}" == "true" ]] || return 0
  # Fetched from S3 (no exec bit kept): run it through bash.
  require_env HA_SCALING_SUMS_URI
  bash "${PWB_HOME}/cluster/ha/controller-ha.sh" --role login --shared-dir "${HA_SHARED_DIR}" \
    --slurmctld-timeout "${SLURMCTLD_TIMEOUT}" --scaling-sums-uri "${HA_SCALING_SUMS_URI}"
}

# slurmdbd_backup: backup slurmdbd here (cluster/ha/slurmdbd-backup.sh); never fails the node.
slurmdbd_backup() {
  [[ "${SLURMDBD_BACKUP:-false}" == "true" ]] || return 0
  require_env SLURMDB_PASSWORD_SECRET_ARN REGION
  bash "${PWB_HOME}/cluster/ha/slurmdbd-backup.sh" --shared-dir "${HA_SHARED_DIR}" \
    --password-secret-arn "${SLURMDB_PASSWORD_SECRET_ARN}" --region "${REGION}"
}

main() {
  trap 'printf "[%s] ERROR: a command failed near line %s\n" "${SCRIPT_NAME}" "${LINENO}" >&2' ERR
  parse_args "$@"
  bootstrap
  local address before after changed=0
  address="$(node_address)" || die "cannot determine this node's address"
  before="$(config_fingerprint)"
  configure_workbench "${address}"
  run_optional licence activate_license
  after="$(config_fingerprint)"
  [[ "${before}" == "${after}" ]] || changed=1
  start_workbench "${changed}" || die "Workbench (rstudio-launcher, rstudio-server) did not start"
  run_optional controller-ha controller_ha
  run_optional slurmdbd-backup slurmdbd_backup
  run_optional health-check health_check
  if [[ -n "${OPTIONAL_FAILURES:-}" ]]; then
    warn "login node up with Workbench; these optional steps failed: ${OPTIONAL_FAILURES}"
  else
    log "login node up with Workbench on ${address}:${WORKBENCH_PORT}"
  fi
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
