#!/usr/bin/env bash
# install-jupyter.sh: JupyterLab and Posit's Workbench extension in the default Python.
#
# Workbench starts Jupyter sessions with the `jupyter` of one Python (jupyter.conf's
# jupyter-exe, /opt/python/<default>/bin/jupyter); Posit's admin guide installs
# JupyterLab and its Workbench extension (pwb_jupyterlab, for JupyterLab 4) into that
# Python with its own pip. Everything comes from a hashed lock (requirements-jupyter.txt,
# written by `invoke image.lock`): pip --require-hashes refuses any distribution, a
# dependency included, whose version or SHA-256 differs from the lock. The lock must pin
# the two versions asked for, or nothing is installed. Run after install-python.sh.
# Safe to re-run: nothing is installed when the pinned versions are already there.
#
# Usage: install-jupyter.sh --python 3.12.11 --jupyterlab-version 4.6.6
#          --extension-version 1.2.2 --requirements requirements-jupyter.txt [--index-url URL]
#   --python              the default Python version (installed under /opt/python)
#   --jupyterlab-version  JupyterLab version (4.x.y; the extension needs JupyterLab 4)
#   --extension-version   pwb_jupyterlab version (x.y.z)
#   --requirements        the hashed lock (every line name==version with --hash=sha256:...)
#   --index-url           a PyPI mirror (default: pip's own setting)
# Needs: root, /opt/python/<version>/bin/python3 with pip, network access to PyPI.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-jupyter"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

EXTENSION_PACKAGE="pwb_jupyterlab"
# pip's own bounds on each request: a slow index fails the build instead of hanging it.
PIP_TIMEOUT="${PIP_TIMEOUT:-60}"
PIP_RETRIES="${PIP_RETRIES:-5}"

usage() { print_header "${BASH_SOURCE[0]}"; }

# installed_version PYTHON PACKAGE: the installed version of a distribution, or nothing.
# pip normalises names (pwb-jupyterlab, pwb_jupyterlab); compare them normalised.
installed_version() {
  local python="$1" wanted="${2//_/-}"
  "${python}" -m pip list --disable-pip-version-check --format=freeze 2>/dev/null |
    awk -F '==' -v want="${wanted,,}" '{ name = tolower($1); gsub(/_/, "-", name) } name == want { print $2 }'
}

# locked_version LOCK PACKAGE: the version the lock pins for a distribution, or nothing.
locked_version() {
  local wanted="${2//_/-}"
  awk -v want="${wanted,,}" -F '==' '/^[A-Za-z0-9]/ {
      name = tolower($1); gsub(/[_.]+/, "-", name); split($2, v, /[ \\;]/)
      if (name == want) { print v[1]; exit } }' "$1"
}

# check_lock LOCK LAB EXTENSION: die unless the lock pins both versions and hashes every entry.
check_lock() {
  local lock="$1" lab="$2" extension="$3" unhashed
  [[ -r "${lock}" ]] || die "the pip lock ${lock} is missing (write it with: invoke image.lock)"
  [[ "$(locked_version "${lock}" jupyterlab)" == "${lab}" ]] ||
    die "${lock##*/} does not pin jupyterlab==${lab} (regenerate it: invoke image.lock)"
  [[ "$(locked_version "${lock}" "${EXTENSION_PACKAGE}")" == "${extension}" ]] ||
    die "${lock##*/} does not pin ${EXTENSION_PACKAGE}==${extension} (regenerate it: invoke image.lock)"
  unhashed="$(awk '/^[A-Za-z0-9]/ { if (name != "" && !hashed) print name; name = $1; hashed = 0 }
      /--hash=sha256:[0-9a-f]/ { hashed = 1 }
      END { if (name != "" && !hashed) print name }' "${lock}")"
  [[ -z "${unhashed}" ]] || die "${lock##*/} has requirements without a hash: ${unhashed//$'\n'/ }"
  log "pip lock ${lock##*/} pins jupyterlab==${lab} ${EXTENSION_PACKAGE}==${extension}, every entry hashed"
}

install_jupyter() {
  local python="$1" lab="$2" extension="$3" index="$4" lock="$5"
  local -a wanted=() args
  [[ "$(installed_version "${python}" jupyterlab)" == "${lab}" ]] || wanted+=("jupyterlab==${lab}")
  [[ "$(installed_version "${python}" "${EXTENSION_PACKAGE}")" == "${extension}" ]] ||
    wanted+=("${EXTENSION_PACKAGE}==${extension}")
  if [[ ${#wanted[@]} -eq 0 ]]; then
    log "JupyterLab ${lab} and ${EXTENSION_PACKAGE} ${extension} already installed"
    return 0
  fi
  args=(-m pip install --no-input --no-cache-dir --disable-pip-version-check
    --timeout "${PIP_TIMEOUT}" --retries "${PIP_RETRIES}")
  [[ -z "${index}" ]] || args+=(--index-url "${index}")
  # One resolve of the whole lock: every distribution must match its pinned SHA-256.
  "${python}" "${args[@]}" --require-hashes --requirement "${lock}" ||
    die "pip refused or failed the hashed lock ${lock##*/} (jupyterlab==${lab} ${EXTENSION_PACKAGE}==${extension})"
  log "installed ${wanted[*]}"
}

main() {
  local python_version="" lab="" extension="" index="" lock="" python root
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --python) python_version="${2:-}"; shift 2 ;;
      --jupyterlab-version) lab="${2:-}"; shift 2 ;;
      --extension-version) extension="${2:-}"; shift 2 ;;
      --requirements) lock="${2:-}"; shift 2 ;;
      --index-url) index="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "${python_version}" =~ ${SEMVER_RE} ]] || die "bad --python '${python_version}': expected x.y.z"
  [[ "${lab}" =~ ^4\.[0-9]+\.[0-9]+$ ]] ||
    die "bad JupyterLab version '${lab}': expected 4.x.y (Posit's extension needs JupyterLab 4)"
  [[ "${extension}" =~ ${SEMVER_RE} ]] ||
    die "bad ${EXTENSION_PACKAGE} version '${extension}': expected x.y.z"
  check_lock "${lock}" "${lab}" "${extension}"
  root="${PWB_ROOT}/opt/python/${python_version}"
  python="${root}/bin/python3"
  [[ -x "${python}" ]] || die "Python ${python_version} is not installed (${python}); run install-python.sh first"
  install_jupyter "${python}" "${lab}" "${extension}" "${index}" "${lock}"
  [[ -x "${root}/bin/jupyter" ]] || die "JupyterLab installed but ${root}/bin/jupyter is missing"
  [[ "$(installed_version "${python}" jupyterlab)" == "${lab}" ]] ||
    die "JupyterLab ${lab} is not what pip reports in ${root}"
  log "jupyter-exe for Workbench: /opt/python/${python_version}/bin/jupyter"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
