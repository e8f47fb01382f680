#!/usr/bin/env bash
# verify-image.sh: last build step; checks the image carries what the node scripts use.
#
# The cluster scripts install nothing at boot, so whatever they call must be in the
# AMI: R under /opt/R/<version>, Python under /opt/python/<version>, jupyter in the
# default Python (jupyter.conf's jupyter-exe), rstudio-server and rstudio-launcher
# installed but disabled, Apptainer, Quarto, openssl (launcher keys), psql (the head node
# creates Workbench's database roles) and the aws CLI (ParallelCluster's AMIs carry AWS
# CLI v2 in /usr/local/bin; the build itself fetched these scripts with it). openssl and
# psql are installed here when the parent lacks them; anything
# else missing fails the build with one message listing every gap, so a broken image
# never reaches a node. Safe to re-run: it only reads, apart from that one install.
#
# Usage: verify-image.sh --r-versions "4.6.1 4.5.3" --python-versions "3.12.11"
#          --python-default 3.12.11
#   --r-versions       space-separated R versions that must be installed
#   --python-versions  space-separated Python versions that must be installed
#   --python-default   the Python that must carry jupyter
# Needs: root, systemctl, apt-get (only when openssl or psql is missing).

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="verify-image"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

WORKBENCH_BIN="/usr/lib/rstudio-server/bin"
WORKBENCH_SERVICES=(rstudio-server rstudio-launcher)

usage() { print_header "${BASH_SOURCE[0]}"; }

ensure_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    log "openssl present"
    return 0
  fi
  log "openssl missing from the parent image: installing it"
  apt_install openssl
  command -v openssl >/dev/null 2>&1 || die "openssl installed but not on PATH"
}

ensure_psql() {
  if command -v psql >/dev/null 2>&1; then
    log "psql present"
    return 0
  fi
  log "psql missing from the parent image: installing postgresql-client"
  apt_install postgresql-client
  command -v psql >/dev/null 2>&1 || die "postgresql-client installed but psql is not on PATH"
}

# check_image R_VERSIONS PYTHON_VERSIONS PYTHON_DEFAULT: print one line per gap.
check_image() {
  local r_versions="$1" python_versions="$2" python_default="$3" version unit path
  local -a rs pythons
  read -r -a rs <<<"${r_versions}"
  read -r -a pythons <<<"${python_versions}"
  for version in "${rs[@]}"; do
    [[ -x "${PWB_ROOT}/opt/R/${version}/bin/R" ]] || echo "R ${version}: /opt/R/${version}/bin/R missing"
  done
  for version in "${pythons[@]}"; do
    [[ -x "${PWB_ROOT}/opt/python/${version}/bin/python3" ]] ||
      echo "Python ${version}: /opt/python/${version}/bin/python3 missing"
  done
  [[ -x "${PWB_ROOT}/opt/python/${python_default}/bin/jupyter" ]] ||
    echo "jupyter: /opt/python/${python_default}/bin/jupyter missing (jupyter.conf's jupyter-exe)"
  for path in rserver rsession rstudio-launcher; do
    [[ -x "${PWB_ROOT}${WORKBENCH_BIN}/${path}" ]] || echo "Workbench: ${WORKBENCH_BIN}/${path} missing"
  done
  for unit in "${WORKBENCH_SERVICES[@]}"; do
    if systemctl is-enabled --quiet "${unit}" 2>/dev/null; then
      echo "Workbench: ${unit} is enabled (login nodes enable it; the image must not)"
    fi
  done
  [[ -x "${PWB_ROOT}/usr/bin/apptainer" ]] || echo "apptainer: /usr/bin/apptainer missing (container sessions)"
  # The link is absolute in the image, so resolve it inside PWB_ROOT.
  path="$(readlink "${PWB_ROOT}/usr/local/bin/quarto" 2>/dev/null || echo /usr/local/bin/quarto)"
  [[ -x "${PWB_ROOT}${path}" ]] || echo "quarto: /usr/local/bin/quarto missing"
  command -v aws >/dev/null 2>&1 ||
    echo "aws CLI: not on PATH (ParallelCluster's parent AMIs carry it; the node scripts need it)"
  command -v openssl >/dev/null 2>&1 || echo "openssl: not on PATH"
  command -v psql >/dev/null 2>&1 || echo "psql: not on PATH (the head node creates Workbench's database roles)"
  grep -q -- '-----BEGIN CERTIFICATE-----' "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem" 2>/dev/null ||
    echo "RDS CA bundle: /etc/pwbcluster/rds-ca-bundle.pem missing (database.conf verifies against it)"
}

main() {
  local r_versions="" python_versions="" python_default="" gaps
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --r-versions) r_versions="${2:-}"; shift 2 ;;
      --python-versions) python_versions="${2:-}"; shift 2 ;;
      --python-default) python_default="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ -n "${r_versions}" ]] || die "--r-versions is required"
  [[ -n "${python_versions}" ]] || die "--python-versions is required"
  [[ "${python_default}" =~ ${SEMVER_RE} ]] || die "bad --python-default '${python_default}': expected x.y.z"
  ensure_openssl
  ensure_psql
  gaps="$(check_image "${r_versions}" "${python_versions}" "${python_default}")"
  if [[ -n "${gaps}" ]]; then
    printf '%s\n' "${gaps}" | while IFS= read -r line; do warn "${line}"; done
    die "the image lacks $(printf '%s\n' "${gaps}" | grep -c .) thing(s) the node scripts need (listed above)"
  fi
  log "image complete: everything the node scripts use is in place"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
