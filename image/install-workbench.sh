#!/usr/bin/env bash
# install-workbench.sh: install Posit Workbench, then disable its services.
#
# One AMI serves head, login and compute nodes: Workbench is installed with its
# session components (rsession) so compute nodes can run launcher sessions, and
# rstudio-server and rstudio-launcher are disabled here; the login-node script
# enables them at boot. Safe to re-run: an installed matching version is kept.
#
# Usage: install-workbench.sh --version 2025.05.1+513.pro3 --codename jammy
#          [--url-base https://download2.rstudio.org/server] [--sha256 HEX]
#   --version   Workbench version as Posit writes it (YYYY.MM.P+BUILD.proN)
#   --codename  Ubuntu codename of the build (jammy, noble)
#   --url-base  where Posit publishes the server packages
#   --sha256    expected SHA-256 of the .deb (Posit lists it on its download page)
# Needs: root, curl, apt-get, dpkg-query, systemctl.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-workbench"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

WORKBENCH_PACKAGE="rstudio-workbench"
WORKBENCH_SERVICES=(rstudio-server rstudio-launcher)
VERSION_RE='^20[0-9]{2}\.[0-9]{2}\.[0-9]+[+-][0-9]+\.pro[0-9]+$'

usage() { print_header "${BASH_SOURCE[0]}"; }

# The package file name uses '-' where the version has '+'.
workbench_url() {
  local base="$1" codename="$2" version="$3"
  printf '%s/%s/amd64/rstudio-workbench-%s-amd64.deb' "${base}" "${codename}" "${version//+/-}"
}

install_workbench() {
  local version="$1" codename="$2" base="$3" sha256="$4" installed deb
  installed="$(deb_version "${WORKBENCH_PACKAGE}")"
  if [[ "${installed}" == "${version}" || "${installed}" == "${version//+/-}" ]]; then
    log "Workbench ${version} already installed"
    return 0
  fi
  make_workdir
  deb="${PWB_WORKDIR}/rstudio-workbench-${version//+/-}-amd64.deb"
  fetch "$(workbench_url "${base}" "${codename}" "${version}")" "${deb}"
  if [[ -n "${sha256}" ]]; then
    verify_sha256 "${deb}" "${sha256}"
  else
    warn "no --sha256 given: the package is trusted on TLS alone"
  fi
  apt_install "${deb}"
  log "installed Workbench ${version}"
}

disable_services() {
  local unit
  for unit in "${WORKBENCH_SERVICES[@]}"; do
    if systemctl is-enabled --quiet "${unit}" 2>/dev/null ||
      systemctl is-active --quiet "${unit}" 2>/dev/null; then
      systemctl disable --now "${unit}"
      log "disabled ${unit} (login nodes enable it at boot)"
    else
      log "${unit} already disabled"
    fi
  done
}

check_session_components() {
  local rsession="${PWB_ROOT}/usr/lib/rstudio-server/bin/rsession"
  [[ -x "${rsession}" ]] || die "session components missing: ${rsession} not found"
  log "session components present (${rsession})"
}

main() {
  local version="" codename="" base="https://download2.rstudio.org/server" sha256=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --version) version="${2:-}"; shift 2 ;;
      --codename) codename="${2:-}"; shift 2 ;;
      --url-base) base="${2:-}"; shift 2 ;;
      --sha256) sha256="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "${version}" =~ ${VERSION_RE} ]] ||
    die "bad Workbench version '${version}': expected e.g. 2025.05.1+513.pro3"
  [[ "${codename}" =~ ^[a-z]+$ ]] || die "bad --codename '${codename}': expected e.g. jammy"
  install_workbench "${version}" "${codename}" "${base}" "${sha256}"
  disable_services
  check_session_components
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
