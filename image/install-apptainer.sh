#!/usr/bin/env bash
# install-apptainer.sh: install Apptainer from its release .deb.
#
# Apptainer runs container sessions and jobs. The release package comes from the
# project's GitHub releases and is verified against the release's own `sha256sums`
# asset (published with every release); --sha256 pins the value as well, and then
# both must agree. Safe to re-run: an installed matching version is kept.
#
# Usage: install-apptainer.sh --version 1.5.4
#          [--url-base https://github.com/apptainer/apptainer/releases/download]
#          [--sha256 HEX]
#   --version   Apptainer version (x.y.z)
#   --url-base  where Apptainer publishes its releases (v<version>/ below it)
#   --sha256    expected SHA-256 of the .deb (optional; must match the published one)
# Needs: root, curl, apt-get, dpkg-query.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-apptainer"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

usage() { print_header "${BASH_SOURCE[0]}"; }

install_apptainer() {
  local version="$1" base="$2" sha256="$3" installed name deb sums expected
  installed="$(deb_version apptainer)"
  if [[ "${installed}" == "${version}" || "${installed}" == "${version}-"* ]]; then
    log "Apptainer ${version} already installed"
    return 0
  fi
  make_workdir
  name="apptainer_${version}_amd64.deb"
  deb="${PWB_WORKDIR}/${name}"
  sums="${PWB_WORKDIR}/apptainer-${version}-sha256sums"
  fetch "${base}/v${version}/${name}" "${deb}"
  fetch "${base}/v${version}/sha256sums" "${sums}"
  expected="$(expected_sha256 "${name}" "$(published_sha256 "${sums}" "${name}")" "${sha256}")"
  verify_sha256 "${deb}" "${expected}"
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
