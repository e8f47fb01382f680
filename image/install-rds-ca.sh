#!/usr/bin/env bash
# install-rds-ca.sh: the Amazon RDS certificate bundle at /etc/pwbcluster/rds-ca-bundle.pem.
#
# Workbench's database.conf connects with sslmode=verify-full against this bundle: the
# database's certificate must chain to an RDS CA and name the host, not merely encrypt.
# AWS publishes one bundle for every commercial region (global-bundle.pem), the URL the
# image stage gives. With --sha256 the download must
# match it; without, it is trusted on TLS alone and the build warns. Either way it must
# hold at least one PEM certificate. Safe to re-run: an installed bundle (matching the
# pin, when there is one) is kept and nothing is downloaded.
#
# Usage: install-rds-ca.sh --url URL [--sha256 HEX]
#   --url     where AWS publishes the bundle
#   --sha256  optional pin of the bundle's SHA-256
# Needs: root, curl, sha256sum, install.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-rds-ca"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

readonly BUNDLE_PATH="/etc/pwbcluster/rds-ca-bundle.pem"

usage() { print_header "${BASH_SOURCE[0]}"; }

install_bundle() {
  local url="$1" sha256="$2" dest tmp
  dest="${PWB_ROOT}${BUNDLE_PATH}"
  if [[ -s "${dest}" ]] && { [[ -z "${sha256}" ]] ||
    [[ "$(sha256sum "${dest}" | awk '{ print $1 }')" == "${sha256}" ]]; }; then
    log "RDS CA bundle already installed"
    return 0
  fi
  make_workdir
  tmp="${PWB_WORKDIR}/rds-ca-bundle.pem"
  fetch "${url}" "${tmp}"
  if [[ -n "${sha256}" ]]; then
    verify_sha256 "${tmp}" "${sha256}"
  else
    warn "RDS CA bundle not pinned (image.rds_ca.sha256): trusted on TLS alone"
  fi
  grep -q -- '-----BEGIN CERTIFICATE-----' "${tmp}" || die "${url} is not a PEM certificate bundle"
  install -D -m 0644 "${tmp}" "${dest}"
  log "installed the RDS CA bundle ($(grep -c -- '-----BEGIN CERTIFICATE-----' "${dest}") certificates)"
}

main() {
  local url="" sha256=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --url) url="${2:-}"; shift 2 ;;
      --sha256) sha256="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "${url}" =~ ^https:// ]] || die "--url https://... is required"
  [[ -z "${sha256}" || "${sha256}" =~ ^[0-9a-f]{64}$ ]] || die "bad --sha256 '${sha256}'"
  install_bundle "${url}" "${sha256}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
