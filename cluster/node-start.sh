#!/usr/bin/env bash
# node-start.sh: OnNodeStart on every node (head, login, compute), before ParallelCluster
# configures the directory service.
#
# Fetches the node scripts and the non-secret settings (node.env) from the scripts
# bucket, then installs the directory's CA certificate (public) where sssd's
# LdapTlsCaCert points, so ldaps:// works from the first sssd start, and, where the
# services stage generated Workbench's certificate, its CA into the system's trust store
# (sessions on compute nodes call back to Workbench over TLS and check the certificate).
#
# Usage: node-start.sh --env-uri s3://BUCKET/PREFIX/cluster/node.env
# Needs: aws CLI (in the AMI) and the instance role's read access to the bucket prefix.
# Installs nothing. Safe to re-run: files are replaced only when they differ.
# Environment (tests): TRUST_ANCHORS (the trust store's anchors directory) and
# TRUST_UPDATE (the command that rebuilds the store), found from the OS otherwise.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="node-start"
PWB_HOME="${PWB_HOME:-/opt/pwbcluster}"

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

# parse_args ARGS...: sets ENV_URI.
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

# bootstrap: fetch node scripts + node.env (bounded), source common.sh, load node.env.
bootstrap() {
  fetch_bundle
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "${PWB_HOME}/cluster/lib/common.sh"
  load_env "${PWB_HOME}/cluster/node.env"
}

# install_ldap_ca: the directory CA (fetched with the bundle as ldap-ca.pem) where
# sssd's LdapTlsCaCert points (ldaps:// only).
install_ldap_ca() {
  local ca="${PWB_HOME}/cluster/ldap-ca.pem"
  if [[ "${LDAP_TLS:-false}" != "true" ]]; then
    warn "directory TLS is off (the deployment opted out): LDAP traffic is not encrypted"
    return 0
  fi
  require_env LDAP_CA_PATH
  [[ -s "${ca}" ]] || die "the directory CA certificate is missing from the scripts bucket"
  grep -q -- '-----BEGIN CERTIFICATE-----' "${ca}" || die "${ca} is not a PEM certificate"
  install_file "${ca}" "${LDAP_CA_PATH}" 644 "${ROOT_OWNER:-root:root}"
}

# install_workbench_ca: the generated Workbench certificate's CA (workbench-ca.pem) in
# the system trust store: Debian/Ubuntu's update-ca-certificates, or RHEL's
# update-ca-trust. Rebuilds the store only when the anchor changed.
install_workbench_ca() {
  local ca="${PWB_HOME}/cluster/workbench-ca.pem" anchors update
  [[ "${WORKBENCH_CA:-false}" == "true" ]] || return 0
  [[ -s "${ca}" ]] || die "the Workbench CA certificate is missing from the scripts bucket"
  grep -q -- '-----BEGIN CERTIFICATE-----' "${ca}" || die "${ca} is not a PEM certificate"
  if [[ -n "${TRUST_ANCHORS:-}" ]]; then
    anchors="${TRUST_ANCHORS}" update="${TRUST_UPDATE:?TRUST_UPDATE goes with TRUST_ANCHORS}"
  elif command -v update-ca-certificates >/dev/null 2>&1; then
    anchors=/usr/local/share/ca-certificates update=update-ca-certificates
  elif command -v update-ca-trust >/dev/null 2>&1; then
    anchors=/etc/pki/ca-trust/source/anchors update="update-ca-trust extract"
  else
    die "no trust store tool (update-ca-certificates or update-ca-trust) on this node"
  fi
  if cmp -s "${ca}" "${anchors}/pwbcluster-workbench.crt"; then
    return 0
  fi
  install_file "${ca}" "${anchors}/pwbcluster-workbench.crt" 644 "${ROOT_OWNER:-root:root}"
  # shellcheck disable=SC2086  # "update-ca-trust extract" is a command and its argument
  ${update} >/dev/null || die "cannot rebuild the trust store (${update})"
  log "Workbench CA trusted"
}

main() {
  trap 'printf "[%s] ERROR: a command failed near line %s\n" "${SCRIPT_NAME}" "${LINENO}" >&2' ERR
  parse_args "$@"
  bootstrap
  install_ldap_ca
  install_workbench_ca
  log "node start done"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
