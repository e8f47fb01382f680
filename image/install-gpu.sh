#!/usr/bin/env bash
# install-gpu.sh: NVIDIA driver, CUDA toolkit and cuDNN from NVIDIA's apt repository.
#
# Runs only with --enabled true. The official ParallelCluster AMI already carries an
# NVIDIA driver; it is kept (replacing it would break ParallelCluster's own GPU
# set-up), and the repository's driver is installed only where none is present.
# Then cuda-toolkit-<major>-<minor> and cuDNN 9 for that CUDA major. NVIDIA signs
# the repository; apt verifies every package against the cuda-keyring key. The
# keyring package itself is checked before it is installed: its SHA-256 against the
# one NVIDIA publishes in the repository's Packages index (--keyring-sha256 pins it
# as well), and the key inside against NVIDIA's published repository key
# fingerprint (--key-fingerprint). Safe to re-run: installed packages are skipped.
#
# Usage: install-gpu.sh --enabled true --cuda-version 12.8 --repo-os ubuntu2204
#          [--repo-base https://developer.download.nvidia.com/compute/cuda/repos]
#          [--keyring-sha256 HEX] [--key-fingerprint HEX40]
#   --enabled         true or false (false does nothing)
#   --cuda-version    CUDA toolkit major.minor
#   --repo-os         NVIDIA's repository name for the OS (ubuntu2204, ubuntu2404)
#   --repo-base       where NVIDIA publishes its CUDA repositories
#   --keyring-sha256  expected SHA-256 of cuda-keyring_1.1-1_all.deb (optional; must
#                     match the one in the repository's Packages index)
#   --key-fingerprint the repository signing key the keyring must hold (40 hex)
# Needs: root, curl, gzip, apt-get, dpkg, dpkg-deb, dpkg-query, gpg.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-gpu"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

KEYRING_DEB="cuda-keyring_1.1-1_all.deb"
KEYRING_FILE="usr/share/keyrings/cuda-archive-keyring.gpg"

usage() { print_header "${BASH_SOURCE[0]}"; }

# index_sha256 PACKAGES_FILE NAME: the SHA256 field of the stanza whose Filename is NAME.
index_sha256() {
  awk -v want="$2" '
    /^Filename: / { file = $2; sub(/.*\//, "", file) }
    /^SHA256: / { sha = $2 }
    /^$/ { if (file == want) { print sha; found = 1; exit } file = ""; sha = "" }
    END { if (!found && file == want) print sha }' "$1"
}

# check_key_fingerprint DEB FINGERPRINT: the keyring in DEB holds that key.
check_key_fingerprint() {
  local deb="$1" fingerprint="${2^^}" unpacked="${PWB_WORKDIR}/keyring" found
  mkdir -p "${unpacked}"
  dpkg-deb -x "${deb}" "${unpacked}"
  [[ -f "${unpacked}/${KEYRING_FILE}" ]] || die "${KEYRING_DEB} has no /${KEYRING_FILE}"
  found="$(gpg --batch --no-default-keyring --show-keys --with-colons "${unpacked}/${KEYRING_FILE}" 2>/dev/null |
    awk -F: '$1 == "fpr" { print toupper($10) }')"
  grep -qx "${fingerprint}" <<<"${found}" ||
    die "${KEYRING_DEB} does not hold NVIDIA's repository key ${fingerprint} (found: ${found:-none})"
  log "repository key fingerprint ok: ${fingerprint}"
}

install_keyring() {
  local repo="$1" sha256="$2" fingerprint="$3" deb index expected
  if [[ -n "$(deb_version cuda-keyring)" ]]; then
    log "cuda-keyring already installed"
    return 0
  fi
  make_workdir
  deb="${PWB_WORKDIR}/${KEYRING_DEB}"
  index="${PWB_WORKDIR}/Packages"
  fetch "${repo}/${KEYRING_DEB}" "${deb}"
  fetch "${repo}/Packages.gz" "${index}.gz"
  gzip -dc "${index}.gz" >"${index}" || die "the repository's Packages.gz is not a gzip file"
  expected="$(expected_sha256 "${KEYRING_DEB}" "$(index_sha256 "${index}" "${KEYRING_DEB}")" "${sha256}")"
  verify_sha256 "${deb}" "${expected}"
  if [[ -n "${fingerprint}" ]]; then
    check_key_fingerprint "${deb}" "${fingerprint}"
  else
    warn "no --key-fingerprint given: the repository key is trusted on TLS and the index alone"
  fi
  dpkg -i "${deb}"
  log "installed NVIDIA's repository key"
}

install_packages() {
  local cuda="$1" major="${1%%.*}" package
  local -a wanted=("cuda-toolkit-${cuda/./-}" "cudnn9-cuda-${major}") missing=()
  if command -v nvidia-smi >/dev/null 2>&1; then
    log "an NVIDIA driver is present (nvidia-smi): keeping it"
  else
    wanted+=(cuda-drivers)
  fi
  for package in "${wanted[@]}"; do
    if [[ -n "$(deb_version "${package}")" ]]; then
      log "${package} already installed"
    else
      missing+=("${package}")
    fi
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    log "installed ${missing[*]}"
  fi
}

main() {
  local enabled="" cuda="" repo_os="" sha256="" fingerprint=""
  local base="https://developer.download.nvidia.com/compute/cuda/repos"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --enabled) enabled="${2:-}"; shift 2 ;;
      --cuda-version) cuda="${2:-}"; shift 2 ;;
      --repo-os) repo_os="${2:-}"; shift 2 ;;
      --repo-base) base="${2:-}"; shift 2 ;;
      --keyring-sha256) sha256="${2:-}"; shift 2 ;;
      --key-fingerprint) fingerprint="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  case "${enabled}" in
    true) ;;
    false) log "GPU stack not requested: nothing to do"; return 0 ;;
    *) die "bad --enabled '${enabled}': expected true or false" ;;
  esac
  [[ "${cuda}" =~ ^1[0-9]\.[0-9]+$ ]] || die "bad CUDA version '${cuda}': expected major.minor, e.g. 12.8"
  [[ "${repo_os}" =~ ^ubuntu[0-9]{4}$ ]] || die "bad --repo-os '${repo_os}': expected e.g. ubuntu2204"
  [[ -z "${fingerprint}" || "${fingerprint}" =~ ^[0-9A-Fa-f]{40}$ ]] ||
    die "bad --key-fingerprint '${fingerprint}': expected 40 hex digits"
  install_keyring "${base}/${repo_os}/x86_64" "${sha256}" "${fingerprint}"
  install_packages "${cuda}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
