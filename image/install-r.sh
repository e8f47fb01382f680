#!/usr/bin/env bash
# install-r.sh: install several R versions side by side from Posit's R builds.
#
# Each version goes to /opt/R/<version> (Posit's .deb layout); the default one is
# linked into /usr/local/bin as R and Rscript. Safe to re-run: installed versions
# are skipped and links are only changed when they point elsewhere.
#
# Usage: install-r.sh --versions "4.6.1 4.5.3" --default 4.5.3 --os ubuntu-2204
#          [--sha256 PINS] [--url-base https://cdn.posit.co/r]
#   --versions  space-separated R versions (x.y.z)
#   --default   the version linked into /usr/local/bin (must be in --versions)
#   --os        Posit's platform name (ubuntu-2204, ubuntu-2404)
#   --url-base  where Posit publishes the R builds
#   --sha256    optional pins "4.5.3=HEX ..." (image.r.sha256): a pinned package must
#               match before it is installed; an unpinned one is installed with a warning
# Posit publishes no checksums for these packages, so only a pin can catch a changed one.
# Needs: root, curl, apt-get.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-r"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

usage() { print_header "${BASH_SOURCE[0]}"; }

r_url() {
  posit_deb_url "$1" "$2" r "$3"
}

install_r_version() {
  install_posit_build R r "$1" "$2" "$3" "/opt/R/${1}/bin/R" "$(pin_for "$1" "$4")"
}

link_default_r() {
  local version="$1" tool
  for tool in R Rscript; do
    link_if_needed "/opt/R/${version}/bin/${tool}" "${PWB_ROOT}/usr/local/bin/${tool}"
  done
}

main() {
  local versions="" default="" os="" pins="" base="https://cdn.posit.co/r" version
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --versions) versions="${2:-}"; shift 2 ;;
      --default) default="${2:-}"; shift 2 ;;
      --os) os="${2:-}"; shift 2 ;;
      --url-base) base="${2:-}"; shift 2 ;;
      --sha256) pins="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  local -a list
  read -r -a list <<<"${versions}"
  [[ ${#list[@]} -gt 0 ]] || die "no R versions given (--versions \"4.6.1 4.5.3\")"
  for version in "${list[@]}"; do
    [[ "${version}" =~ ${SEMVER_RE} ]] || die "bad R version '${version}': expected x.y.z"
  done
  in_list "${default}" "${list[@]}" ||
    die "default R version '${default}' is not one of: ${list[*]}"
  [[ "${os}" =~ ^ubuntu-[0-9]{4}$ ]] || die "bad --os '${os}': expected e.g. ubuntu-2204"
  pin_for "" "${pins}" >/dev/null # every pin well-formed, checked here and not in a subshell
  for version in "${list[@]}"; do
    install_r_version "${version}" "${os}" "${base}" "${pins}"
  done
  link_default_r "${default}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
