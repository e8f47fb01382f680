# Fakes for the image component scripts (load after test_helper).
# shellcheck disable=SC2016,SC2034  # stub bodies expand when run; IMAGE_DIR is for the tests
# A scratch root ($PWB_ROOT) stands for /; stubs on PATH stand for curl, apt-get,
# dpkg, dpkg-query, systemctl. Installed packages live in a fake dpkg database
# ($FAKE_DB/<package> holds the version), so dpkg-query answers like the real one.

image_fakes_setup() {
  stub_setup
  export PWB_ROOT="${BATS_TEST_TMPDIR}/root"
  export FAKE_DB="${BATS_TEST_TMPDIR}/dpkg-db"
  export FAKE_WWW="${BATS_TEST_TMPDIR}/www"
  export FAKE_UNITS="${BATS_TEST_TMPDIR}/units"
  mkdir -p "${PWB_ROOT}" "${FAKE_DB}" "${FAKE_WWW}" "${FAKE_UNITS}"
  export PWB_CURL_RETRIES=0
  IMAGE_DIR="${REPO_ROOT}/image"

  # curl: serve $FAKE_WWW/<file name> when present; with $FAKE_WWW/.strict, 404 otherwise.
  stub curl '
out="" url=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --output) out="$2"; shift 2 ;;
    --connect-timeout|--max-time|--retry|--retry-delay) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
name="${url##*/}"
if [[ -f "${FAKE_WWW}/${name}" ]]; then cp "${FAKE_WWW}/${name}" "${out}"; exit 0; fi
if [[ -f "${FAKE_WWW}/.strict" ]]; then echo "curl: (22) 404 ${url}" >&2; exit 22; fi
printf "fake package from %s\n" "${url}" >"${out}"'

  # The python3 of a fake Posit Python: `-m pip list --format=freeze` and
  # `-m pip install name==version...` or `--requirement FILE` against a file beside bin/;
  # pip calls are recorded in $FAKE_PIP_CALLS; with $FAKE_WWW/.strict, a version 9.x is
  # "not on PyPI". Like pip, --require-hashes refuses a requirement without a hash, and a
  # hash listed in $FAKE_WWW/.bad-hashes is one the downloaded file does not have.
  export FAKE_PYTHON="${BATS_TEST_TMPDIR}/fake-python3"
  export FAKE_PIP_CALLS="${BATS_TEST_TMPDIR}/calls/pip"
  cat >"${FAKE_PYTHON}" <<'PY'
#!/usr/bin/env bash
bin="$(cd "$(dirname "$0")" && pwd)"
state="${bin}/../.fake-site-packages"
[[ "$1 $2" == "-m pip" ]] || exit 0
shift 2
printf '%s\n' "$*" >>"${FAKE_PIP_CALLS}"
case "$1" in
  list) [[ -f "${state}" ]] && cat "${state}"; exit 0 ;;
  install)
    reqs=() require_hashes=""
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --require-hashes) require_hashes=1; shift ;;
        --requirement) reqs+=("$2"); shift 2 ;;
        *) shift ;;
      esac
    done
    set --
    for file in "${reqs[@]}"; do
      name="" hashed=""
      while IFS= read -r line; do
        case "${line}" in
          [A-Za-z0-9]*==*)
            [[ -z "${name}" || -n "${hashed}" || -z "${require_hashes}" ]] ||
              { echo "ERROR: Hashes are required in --require-hashes mode: ${name}" >&2; exit 1; }
            name="${line%% *}"; hashed=""; set -- "$@" "${name}" ;;
          *--hash=sha256:*)
            h="${line#*--hash=sha256:}"; h="${h%% *}"
            if [[ -f "${FAKE_WWW}/.bad-hashes" ]] && grep -qx "${h}" "${FAKE_WWW}/.bad-hashes"; then
              echo "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE: ${name}" >&2; exit 1
            fi
            hashed=1 ;;
        esac
      done <"${file}"
      [[ -z "${name}" || -n "${hashed}" || -z "${require_hashes}" ]] ||
        { echo "ERROR: Hashes are required in --require-hashes mode: ${name}" >&2; exit 1; }
    done
    for arg in "$@"; do
      [[ "${arg}" == *==* ]] || continue
      if [[ -f "${FAKE_WWW}/.strict" && "${arg#*==}" == 9.* ]]; then
        echo "ERROR: No matching distribution found for ${arg}" >&2; exit 1
      fi
    done
    for arg in "$@"; do
      [[ "${arg}" == *==* ]] || continue
      name="${arg%%==*}"; name="${name//_/-}"
      { grep -v "^${name}==" "${state}" 2>/dev/null || true; echo "${name}==${arg#*==}"; } >"${state}.new"
      mv "${state}.new" "${state}"
    done
    printf '#!/bin/sh\n' >"${bin}/jupyter"; chmod +x "${bin}/jupyter" ;;
esac
PY

  # apt-get install ./x.deb: "installs" what the named package would put on disk.
  stub apt-get '
[[ "$1" == "-o" ]] && shift 2
[[ "$1" == "update" ]] && exit 0
for arg in "$@"; do
  case "${arg}" in
    -*) continue ;;
    install) continue ;;
  esac
  base="${arg##*/}"
  case "${base}" in
    r-*_1_amd64.deb)
      v="${base#r-}"; v="${v%_1_amd64.deb}"
      mkdir -p "${PWB_ROOT}/opt/R/${v}/bin"
      for t in R Rscript; do printf "#!/bin/sh\n" >"${PWB_ROOT}/opt/R/${v}/bin/${t}"; chmod +x "${PWB_ROOT}/opt/R/${v}/bin/${t}"; done ;;
    python-*_1_amd64.deb)
      v="${base#python-}"; v="${v%_1_amd64.deb}"
      mkdir -p "${PWB_ROOT}/opt/python/${v}/bin"
      cp "${FAKE_PYTHON}" "${PWB_ROOT}/opt/python/${v}/bin/python3"
      printf "#!/bin/sh\n" >"${PWB_ROOT}/opt/python/${v}/bin/pip3"
      chmod +x "${PWB_ROOT}/opt/python/${v}/bin/python3" "${PWB_ROOT}/opt/python/${v}/bin/pip3" ;;
    rstudio-workbench-*-amd64.deb)
      v="${base#rstudio-workbench-}"; v="${v%-amd64.deb}"
      v="${v%%-*}+${v#*-}"
      echo "${v}" >"${FAKE_DB}/rstudio-workbench"
      mkdir -p "${PWB_ROOT}/usr/lib/rstudio-server/bin"
      for t in rsession rserver rstudio-launcher; do
        printf "#!/bin/sh\n" >"${PWB_ROOT}/usr/lib/rstudio-server/bin/${t}"
        chmod +x "${PWB_ROOT}/usr/lib/rstudio-server/bin/${t}"
      done
      touch "${FAKE_UNITS}/rstudio-server" "${FAKE_UNITS}/rstudio-launcher" ;;
    apptainer_*_amd64.deb)
      v="${base#apptainer_}"; v="${v%_amd64.deb}"
      echo "${v}" >"${FAKE_DB}/apptainer"
      mkdir -p "${PWB_ROOT}/usr/bin"
      printf "#!/bin/sh\n" >"${PWB_ROOT}/usr/bin/apptainer"
      chmod +x "${PWB_ROOT}/usr/bin/apptainer" ;;
    *.deb) echo "1" >"${FAKE_DB}/${base%%_*}" ;;
    *) echo "1.0-1" >"${FAKE_DB}/${arg}" ;;
  esac
done'

  stub dpkg '
[[ "$1" == "-i" ]] || exit 0
base="${2##*/}"; echo "1.1-1" >"${FAKE_DB}/${base%%_*}"'

  stub dpkg-query '
pkg="${!#}"
[[ -f "${FAKE_DB}/${pkg}" ]] || { echo "dpkg-query: no packages found matching ${pkg}" >&2; exit 1; }
echo "install ok installed $(cat "${FAKE_DB}/${pkg}")"'

  # dpkg-deb -x DEB DIR unpacks a keyring holding the key $FAKE_KEY_FPR; gpg lists it.
  export FAKE_KEY_FPR="EB693B3035CD5710E231E123A4B469963BF863CC"
  stub dpkg-deb '
[[ "$1" == "-x" ]] || exit 0
mkdir -p "$3/usr/share/keyrings"
echo "${FAKE_KEY_FPR}" >"$3/usr/share/keyrings/cuda-archive-keyring.gpg"'
  stub gpg 'printf "pub:-:4096:1:%s:::::\nfpr:::::::::%s:\n" "x" "$(cat "${!#}")"'

  # Parent-image tools the verify step looks for (the ParallelCluster AMI has them).
  stub aws
  stub openssl
  stub psql

  # systemctl: a unit is enabled and active while $FAKE_UNITS/<unit> exists.
  stub systemctl '
unit="${!#}"
case "$1" in
  is-enabled|is-active) [[ -f "${FAKE_UNITS}/${unit}" ]] ;;
  disable) rm -f "${FAKE_UNITS}/${unit}" ;;
  *) exit 0 ;;
esac'
}

# A snapshot of the scratch root and the fake package state, to compare runs.
tree_snapshot() {
  (cd "${BATS_TEST_TMPDIR}" && find root dpkg-db units -printf '%p %y %l %s %T@\n' | sort)
}

# make_quarto_release VERSION: a real tarball and the checksums file for it.
make_quarto_release() {
  local version="$1" src
  src="${BATS_TEST_TMPDIR}/quarto-src/quarto-${version}"
  mkdir -p "${src}/bin"
  printf '#!/bin/sh\necho %s\n' "${version}" >"${src}/bin/quarto"
  chmod +x "${src}/bin/quarto"
  tar -czf "${FAKE_WWW}/quarto-${version}-linux-amd64.tar.gz" -C "${src%/*}" "quarto-${version}"
  (cd "${FAKE_WWW}" && sha256sum "quarto-${version}-linux-amd64.tar.gz" >"quarto-${version}-checksums.txt")
}

# minimal_path: a PATH with the stubs and only the basic tools the scripts use, so a
# test can take a parent-image tool (aws, openssl) away whatever this machine has.
minimal_path() {
  local dir="${BATS_TEST_TMPDIR}/sys" tool
  mkdir -p "${dir}"
  for tool in bash env dirname awk grep cat mkdir ln readlink rm mktemp sha256sum sed cp mv chmod tr; do
    ln -sf "$(command -v "${tool}")" "${dir}/${tool}"
  done
  printf '%s:%s' "${BATS_TEST_TMPDIR}/bin" "${dir}"
}

# make_apptainer_release VERSION: the release .deb and its sha256sums asset.
make_apptainer_release() {
  echo "apptainer $1 package" >"${FAKE_WWW}/apptainer_$1_amd64.deb"
  echo "apptainer $1 sources" >"${FAKE_WWW}/apptainer-$1.tar.gz"
  (cd "${FAKE_WWW}" && sha256sum "apptainer-$1.tar.gz" "apptainer_$1_amd64.deb" >sha256sums)
}

# make_cuda_repo: NVIDIA's keyring package and the Packages.gz index listing its SHA-256.
make_cuda_repo() {
  local deb="${FAKE_WWW}/cuda-keyring_1.1-1_all.deb" sha
  echo "cuda keyring package" >"${deb}"
  sha="$(sha256sum "${deb}" | awk '{ print $1 }')"
  printf 'Package: cuda-compat-12-8\nFilename: ./cuda-compat-12-8_1_amd64.deb\nSHA256: %s\n\nPackage: cuda-keyring\nVersion: 1.1-1\nFilename: ./cuda-keyring_1.1-1_all.deb\nSHA256: %s\n\n' \
    "$(printf '0%.0s' {1..64})" "${sha}" | gzip >"${FAKE_WWW}/Packages.gz"
}

calls_count() {
  stub_calls "$1" | grep -c . || true
}
