#!/usr/bin/env bash
# install-apptainer.sh: install Apptainer from its release .deb.
#
# Apptainer runs container sessions and jobs. The release package comes from the
# project's GitHub releases; pass --sha256 to pin it (the release page lists one).
# Safe to re-run: an installed matching version is kept.
#
# Usage: install-apptainer.sh --version 1.5.4
#          [--url-base https://github.com/apptainer/apptainer/releases/download]
#          [--sha256 HEX]
#   --version   Apptainer version (x.y.z)
#   --url-base  where Apptainer publishes its releases (v<version>/ below it)
#   --sha256    expected SHA-256 of the .deb
# Needs: root, curl, apt-get, dpkg-query.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-apptainer"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

usage() { print_header "${BASH_SOURCE[0]}"; }

install_apptainer() {
  local version="$1" base="$2" sha256="$3" installed deb
  installed="$(deb_version apptainer)"
  if [[ "${installed}" == "${version}" || "${installed}" == "${version}-"* ]]; then
    log "Apptainer ${version} already installed"
    return 0
  fi
  make_workdir
  deb="${PWB_WORKDIR}/apptainer_${version}_amd64.deb"
  fetch "${base}/v${version}/apptainer_${version}_amd64.deb" "${deb}"
  if [[ -n "${sha256}" ]]; then
    verify_sha256 "${deb}" "${sha256}"
  else
    warn "no --sha256 given: the package is trusted on TLS alone"
  fi
  apt_install "${deb}"
  log "installed Apptainer ${version}"
}

main() {
  local version="" base="https://github.com/apptainer/apptainer/releases/download" sha256=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --version) version="${2:-}"; shift 2 ;;
      --url-base) base="${2:-}"; shift 2 ;;
      --sha256) sha256="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "${version}" =~ ${SEMVER_RE} ]] || die "bad Apptainer version '${version}': expected x.y.z"
  install_apptainer "${version}" "${base}" "${sha256}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
