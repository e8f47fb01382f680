#!/usr/bin/env bats
# The build-image component scripts under image/, with every external command stubbed.

setup() {
  load test_helper
  load image_fakes
  image_fakes_setup
}

@test "workbench: downloads the version's package for the OS, disables services, keeps sessions" {
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05.1+513.pro3 --codename jammy
  [ "$status" -eq 0 ]
  run stub_calls curl
  [[ "$output" == *"https://download2.rstudio.org/server/jammy/amd64/rstudio-workbench-2025.05.1-513.pro3-amd64.deb"* ]]
  [ "$(cat "${FAKE_DB}/rstudio-workbench")" = "2025.05.1+513.pro3" ]
  run stub_calls systemctl
  [[ "$output" == *"disable --now rstudio-server"* ]]
  [[ "$output" == *"disable --now rstudio-launcher"* ]]
  [ ! -e "${FAKE_UNITS}/rstudio-server" ]
  [ ! -e "${FAKE_UNITS}/rstudio-launcher" ]
  [ -x "${PWB_ROOT}/usr/lib/rstudio-server/bin/rsession" ]
}

@test "workbench: a second run changes nothing" {
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05.1+513.pro3 --codename noble
  [ "$status" -eq 0 ]
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05.1+513.pro3 --codename noble
  [ "$status" -eq 0 ]
  [[ "$output" == *"already installed"* ]]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
  run stub_calls systemctl
  [[ "$output" != *disable* ]]
  [ "$(tree_snapshot)" = "${before}" ]
}

@test "workbench: a bad version fails clearly and downloads nothing" {
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05 --codename jammy
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-workbench] ERROR: bad Workbench version '2025.05'"* ]]
  [ "$(calls_count curl)" -eq 0 ]
}

@test "workbench: a checksum mismatch stops before installing" {
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05.1+513.pro3 --codename jammy \
    --sha256 0000000000000000000000000000000000000000000000000000000000000000
  [ "$status" -eq 1 ]
  [[ "$output" == *"checksum mismatch"* ]]
  [ "$(calls_count apt-get)" -eq 0 ]
}

@test "workbench: a version the vendor does not publish fails with the URL" {
  touch "${FAKE_WWW}/.strict"
  run bash "${IMAGE_DIR}/install-workbench.sh" --version 2099.01.0+1.pro1 --codename jammy
  [ "$status" -eq 1 ]
  [[ "$output" == *"download failed: https://download2.rstudio.org/server/jammy/amd64/rstudio-workbench-2099.01.0-1.pro1-amd64.deb"* ]]
}

@test "r: installs each version from Posit's builds and links the default" {
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.5.3 --os ubuntu-2204
  [ "$status" -eq 0 ]
  run stub_calls curl
  [[ "$output" == *"https://cdn.posit.co/r/ubuntu-2204/pkgs/r-4.6.1_1_amd64.deb"* ]]
  [[ "$output" == *"https://cdn.posit.co/r/ubuntu-2204/pkgs/r-4.5.3_1_amd64.deb"* ]]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/R")" = "/opt/R/4.5.3/bin/R" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/Rscript")" = "/opt/R/4.5.3/bin/Rscript" ]
}

@test "r: a second run changes nothing; a new default only moves the links" {
  bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.5.3 --os ubuntu-2404
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.5.3 --os ubuntu-2404
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
  [ "$(tree_snapshot)" = "${before}" ]
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.6.1 --os ubuntu-2404
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/R")" = "/opt/R/4.6.1/bin/R" ]
}

@test "r: bad versions and a default outside the list fail clearly" {
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6" --default 4.6 --os ubuntu-2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad R version '4.6': expected x.y.z"* ]]
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.4.3 --os ubuntu-2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"default R version '4.4.3' is not one of: 4.6.1 4.5.3"* ]]
  [ "$(calls_count curl)" -eq 0 ]
}

# posit_sha URL: the SHA-256 of what the fake curl serves for URL (no file in $FAKE_WWW).
posit_sha() { printf 'fake package from %s\n' "$1" | sha256sum | awk '{ print $1 }'; }

@test "r: a pinned package is checked before apt sees it; an unpinned one warns by name" {
  local base="https://cdn.posit.co/r/ubuntu-2204/pkgs"
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.6.1 4.5.3" --default 4.5.3 --os ubuntu-2204 \
    --sha256 "4.5.3=$(posit_sha "${base}/r-4.5.3_1_amd64.deb")"
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: r-4.5.3_1_amd64.deb"* ]]
  [[ "$output" == *"[install-r] WARNING: R 4.6.1 (${base}/r-4.6.1_1_amd64.deb) is not pinned (image.r.sha256): Posit publishes no checksum; trusted on TLS alone"* ]]
  [[ "$output" != *"R 4.5.3 ("*"is not pinned"* ]]
  [ -x "${PWB_ROOT}/opt/R/4.5.3/bin/R" ]
}

@test "r: a package that does not match its pin is not installed" {
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.5.3" --default 4.5.3 --os ubuntu-2204 \
    --sha256 "4.5.3=$(printf '0%.0s' {1..64})"
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-r] ERROR: checksum mismatch for r-4.5.3_1_amd64.deb: expected 0000"* ]]
  [ "$(calls_count apt-get)" -eq 0 ]
  [ ! -e "${PWB_ROOT}/opt/R/4.5.3" ]
}

@test "python: a malformed pin fails before any download" {
  run bash "${IMAGE_DIR}/install-python.sh" --versions "3.12.11" --default 3.12.11 --os ubuntu-2204 \
    --sha256 "3.12.11=abc"
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-python] ERROR: bad checksum pin '3.12.11=abc': expected VERSION=SHA256"* ]]
  [ "$(calls_count curl)" -eq 0 ]
  local url="https://cdn.posit.co/python/ubuntu-2204/pkgs/python-3.12.11_1_amd64.deb"
  run bash "${IMAGE_DIR}/install-python.sh" --versions "3.12.11" --default 3.12.11 --os ubuntu-2204 \
    --sha256 "3.12.11=$(posit_sha "${url}")"
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: python-3.12.11_1_amd64.deb"* ]]
}

@test "r: a version Posit does not publish fails with the URL" {
  touch "${FAKE_WWW}/.strict"
  run bash "${IMAGE_DIR}/install-r.sh" --versions "4.9.9" --default 4.9.9 --os ubuntu-2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"download failed: https://cdn.posit.co/r/ubuntu-2204/pkgs/r-4.9.9_1_amd64.deb"* ]]
}

@test "python: installs each version and links python, python3, pip, pip3 to the default" {
  run bash "${IMAGE_DIR}/install-python.sh" --versions "3.12.11 3.11.13" --default 3.11.13 --os ubuntu-2204
  [ "$status" -eq 0 ]
  run stub_calls curl
  [[ "$output" == *"https://cdn.posit.co/python/ubuntu-2204/pkgs/python-3.12.11_1_amd64.deb"* ]]
  [[ "$output" == *"https://cdn.posit.co/python/ubuntu-2204/pkgs/python-3.11.13_1_amd64.deb"* ]]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/python3")" = "/opt/python/3.11.13/bin/python3" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/python")" = "/opt/python/3.11.13/bin/python3" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/pip")" = "/opt/python/3.11.13/bin/pip3" ]
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-python.sh" --versions "3.12.11 3.11.13" --default 3.11.13 --os ubuntu-2204
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(tree_snapshot)" = "${before}" ]
}

@test "python: a bad version fails clearly" {
  run bash "${IMAGE_DIR}/install-python.sh" --versions "3.12" --default 3.12 --os ubuntu-2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-python] ERROR: bad Python version '3.12': expected x.y.z"* ]]
}

install_fake_python() {
  bash "${IMAGE_DIR}/install-python.sh" --versions "$1" --default "${1%% *}" --os ubuntu-2204 2>/dev/null
}

# write_lock LAB EXTENSION [unhashed]: a hashed lock like `invoke image.lock` writes, at $LOCK.
write_lock() {
  LOCK="${BATS_TEST_TMPDIR}/requirements-jupyter.txt"
  {
    echo "# a lock like invoke image.lock writes"
    printf 'jupyterlab==%s \\\n    --hash=sha256:%s\n' "$1" "$(printf 'a%.0s' {1..64})"
    echo "    # via -r requirements-jupyter.in"
    if [[ "${3:-}" == unhashed ]]; then
      echo "tornado==6.6.1"
    else
      printf 'tornado==6.6.1 \\\n    --hash=sha256:%s\n' "$(printf 'b%.0s' {1..64})"
    fi
    printf 'pwb-jupyterlab==%s \\\n    --hash=sha256:%s\n' "$2" "$(printf 'c%.0s' {1..64})"
  } >"${LOCK}"
}

jupyter() {
  local lab="$1" extension="$2"
  shift 2
  bash "${IMAGE_DIR}/install-jupyter.sh" --python 3.12.11 --jupyterlab-version "${lab}" \
    --extension-version "${extension}" --requirements "${LOCK}" "$@"
}

@test "jupyter: installs the hashed lock into the default Python, once" {
  install_fake_python "3.12.11 3.11.13"
  write_lock 4.6.6 1.2.2
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 0 ]
  [[ "$output" == *"pins jupyterlab==4.6.6 pwb_jupyterlab==1.2.2, every entry hashed"* ]]
  [[ "$output" == *"jupyter-exe for Workbench: /opt/python/3.12.11/bin/jupyter"* ]]
  run stub_calls pip
  [[ "$output" == *"install --no-input --no-cache-dir --disable-pip-version-check --timeout 60 --retries 5 --require-hashes --requirement ${LOCK}"* ]]
  run grep -c '^tornado==6.6.1$' "${PWB_ROOT}/opt/python/3.12.11/.fake-site-packages"
  [ "$output" = "1" ]
  [ -x "${PWB_ROOT}/opt/python/3.12.11/bin/jupyter" ]
  [ ! -e "${PWB_ROOT}/opt/python/3.11.13/bin/jupyter" ]
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 0 ]
  [[ "$output" == *"already installed"* ]]
  run grep -c '^install' "${FAKE_PIP_CALLS}"
  [ "$output" = "0" ]
  [ "$(tree_snapshot)" = "${before}" ]
}

@test "jupyter: a new pin with its new lock reinstalls; an index URL is passed to pip" {
  install_fake_python "3.12.11"
  write_lock 4.6.6 1.2.2
  jupyter 4.6.6 1.2.2
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  write_lock 4.6.5 1.2.2
  run jupyter 4.6.5 1.2.2 --index-url https://pypi.example.invalid/simple
  [ "$status" -eq 0 ]
  [[ "$output" == *"installed jupyterlab==4.6.5"* ]]
  run stub_calls pip
  [[ "$output" == *"--index-url https://pypi.example.invalid/simple --require-hashes --requirement ${LOCK}"* ]]
  run grep -c '^jupyterlab==4.6.5$' "${PWB_ROOT}/opt/python/3.12.11/.fake-site-packages"
  [ "$output" = "1" ]
}

@test "jupyter: a lock that pins other versions, lacks a hash or is missing installs nothing" {
  install_fake_python "3.12.11"
  write_lock 4.6.6 1.2.2
  run jupyter 4.6.5 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-jupyter] ERROR: requirements-jupyter.txt does not pin jupyterlab==4.6.5 (regenerate it: invoke image.lock)"* ]]
  run jupyter 4.6.6 1.2.3
  [ "$status" -eq 1 ]
  [[ "$output" == *"does not pin pwb_jupyterlab==1.2.3"* ]]
  write_lock 4.6.6 1.2.2 unhashed
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"requirements-jupyter.txt has requirements without a hash: tornado==6.6.1"* ]]
  rm -f "${LOCK}"
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"the pip lock ${LOCK} is missing (write it with: invoke image.lock)"* ]]
  [ ! -s "${FAKE_PIP_CALLS}" ]
  [ ! -e "${PWB_ROOT}/opt/python/3.12.11/bin/jupyter" ]
}

@test "jupyter: a download whose hash differs from the lock fails the build" {
  install_fake_python "3.12.11"
  write_lock 4.6.6 1.2.2
  printf 'b%.0s' {1..64} >"${FAKE_WWW}/.bad-hashes"
  echo >>"${FAKE_WWW}/.bad-hashes"
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE: tornado==6.6.1"* ]]
  [[ "$output" == *"pip refused or failed the hashed lock requirements-jupyter.txt"* ]]
  [ ! -e "${PWB_ROOT}/opt/python/3.12.11/bin/jupyter" ]
  [ ! -e "${PWB_ROOT}/opt/python/3.12.11/.fake-site-packages" ]
}

@test "jupyter: bad versions and a missing Python fail clearly" {
  write_lock 4.6.6 1.2.2
  run jupyter 3.6.8 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"[install-jupyter] ERROR: bad JupyterLab version '3.6.8': expected 4.x.y"* ]]
  run jupyter 4.6.6 latest
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad pwb_jupyterlab version 'latest'"* ]]
  run jupyter 4.6.6 1.2.2
  [ "$status" -eq 1 ]
  [[ "$output" == *"Python 3.12.11 is not installed"* ]]
  [ ! -s "${FAKE_PIP_CALLS}" ]
}

verify_args=(--r-versions "4.5.3" --python-versions "3.12.11" --python-default 3.12.11)

@test "verify: lists every gap at once and fails the build" {
  run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"R 4.5.3: /opt/R/4.5.3/bin/R missing"* ]]
  [[ "$output" == *"jupyter: /opt/python/3.12.11/bin/jupyter missing"* ]]
  [[ "$output" == *"Workbench: /usr/lib/rstudio-server/bin/rserver missing"* ]]
  [[ "$output" == *"apptainer: /usr/bin/apptainer missing"* ]]
  [[ "$output" == *"ERROR: the image lacks 9 thing(s) the node scripts need"* ]]
}

@test "verify: a complete image passes; an enabled Workbench unit or no aws CLI fails" {
  bash "${IMAGE_DIR}/install-r.sh" --versions 4.5.3 --default 4.5.3 --os ubuntu-2204 2>/dev/null
  install_fake_python "3.12.11"
  write_lock 4.6.6 1.2.2
  jupyter 4.6.6 1.2.2 2>/dev/null
  bash "${IMAGE_DIR}/install-workbench.sh" --version 2025.05.1+513.pro3 --codename jammy 2>/dev/null
  make_apptainer_release 1.5.4
  bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4 2>/dev/null
  make_quarto_release 1.10.20
  bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20 2>/dev/null
  run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"RDS CA bundle: /etc/pwbcluster/rds-ca-bundle.pem missing"* ]]
  printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' >"${FAKE_WWW}/global-bundle.pem"
  bash "${IMAGE_DIR}/install-rds-ca.sh" --url https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem 2>/dev/null
  run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 0 ]
  [[ "$output" == *"image complete"* ]]
  [ "$(calls_count apt-get)" -gt 0 ]
  touch "${FAKE_UNITS}/rstudio-launcher"
  run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"rstudio-launcher is enabled"* ]]
  rm -f "${FAKE_UNITS}/rstudio-launcher" "${BATS_TEST_TMPDIR}/bin/aws"
  PATH="$(minimal_path)" run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"aws CLI: not on PATH"* ]]
}

@test "verify: installs openssl when the parent lacks it" {
  rm -f "${BATS_TEST_TMPDIR}/bin/openssl"
  # The apt-get stub "installs" openssl by putting it on PATH, as the real one would.
  stub apt-get '[[ "${!#}" == openssl ]] && printf "#!/bin/sh\n" >"${BATS_TEST_TMPDIR}/bin/openssl" && chmod +x "${BATS_TEST_TMPDIR}/bin/openssl"; exit 0'
  PATH="$(minimal_path)" run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"openssl missing from the parent image: installing it"* ]]
  [[ "$output" != *"openssl: not on PATH"* ]]
  run stub_calls apt-get
  [[ "$output" == *"install -y -q --no-install-recommends openssl"* ]]
}

@test "verify: installs psql when the parent lacks it (the head node creates database roles)" {
  rm -f "${BATS_TEST_TMPDIR}/bin/psql"
  stub apt-get '[[ "${!#}" == postgresql-client ]] && printf "#!/bin/sh\n" >"${BATS_TEST_TMPDIR}/bin/psql" && chmod +x "${BATS_TEST_TMPDIR}/bin/psql"; exit 0'
  PATH="$(minimal_path)" run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [[ "$output" == *"psql missing from the parent image: installing postgresql-client"* ]]
  [[ "$output" != *"psql: not on PATH"* ]]
  run stub_calls apt-get
  [[ "$output" == *"install -y -q --no-install-recommends postgresql-client"* ]]
  rm -f "${BATS_TEST_TMPDIR}/bin/psql"
  stub apt-get 'exit 0'
  PATH="$(minimal_path)" run bash "${IMAGE_DIR}/verify-image.sh" "${verify_args[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"postgresql-client installed but psql is not on PATH"* ]]
}

@test "quarto: verifies the published checksum, unpacks, links; second run changes nothing" {
  make_quarto_release 1.10.20
  run bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: quarto-1.10.20-linux-amd64.tar.gz"* ]]
  run stub_calls curl
  [[ "$output" == *"https://github.com/quarto-dev/quarto-cli/releases/download/v1.10.20/quarto-1.10.20-linux-amd64.tar.gz"* ]]
  [[ "$output" == *"https://github.com/quarto-dev/quarto-cli/releases/download/v1.10.20/quarto-1.10.20-checksums.txt"* ]]
  [ -x "${PWB_ROOT}/opt/quarto/1.10.20/bin/quarto" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/quarto")" = "/opt/quarto/1.10.20/bin/quarto" ]
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(tree_snapshot)" = "${before}" ]
}

@test "quarto: a pin must agree with the published checksum (a release replaced whole is caught)" {
  make_quarto_release 1.10.20
  local published
  published="$(awk '{ print $1 }' "${FAKE_WWW}/quarto-1.10.20-checksums.txt")"
  run bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20 --sha256 "$(printf '0%.0s' {1..64})"
  [ "$status" -eq 1 ]
  [[ "$output" == *"pinned SHA-256 for quarto-1.10.20-linux-amd64.tar.gz (0000"*") differs from the vendor's published ${published}"* ]]
  [ ! -e "${PWB_ROOT}/opt/quarto/1.10.20" ]
  run bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20 --sha256 "${published}"
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: quarto-1.10.20-linux-amd64.tar.gz"* ]]
}

@test "quarto: a tampered tarball is refused" {
  make_quarto_release 1.10.20
  echo tampered >>"${FAKE_WWW}/quarto-1.10.20-linux-amd64.tar.gz"
  run bash "${IMAGE_DIR}/install-quarto.sh" --version 1.10.20
  [ "$status" -eq 1 ]
  [[ "$output" == *"checksum mismatch for quarto-1.10.20-linux-amd64.tar.gz"* ]]
  [ ! -e "${PWB_ROOT}/opt/quarto/1.10.20/bin/quarto" ]
}

@test "apptainer: installs the release package once, verified against the release's sha256sums" {
  make_apptainer_release 1.5.4
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: apptainer_1.5.4_amd64.deb"* ]]
  [[ "$output" != *WARNING* ]]
  run stub_calls curl
  [[ "$output" == *"https://github.com/apptainer/apptainer/releases/download/v1.5.4/apptainer_1.5.4_amd64.deb"* ]]
  [[ "$output" == *"https://github.com/apptainer/apptainer/releases/download/v1.5.4/sha256sums"* ]]
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version v1.5
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad Apptainer version 'v1.5'"* ]]
}

@test "apptainer: a tampered package, an unlisted one or a disagreeing pin is refused" {
  make_apptainer_release 1.5.4
  echo tampered >>"${FAKE_WWW}/apptainer_1.5.4_amd64.deb"
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4
  [ "$status" -eq 1 ]
  [[ "$output" == *"checksum mismatch for apptainer_1.5.4_amd64.deb"* ]]
  make_apptainer_release 1.5.4
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4 --sha256 "$(printf 'a%.0s' {1..64})"
  [ "$status" -eq 1 ]
  [[ "$output" == *"pinned SHA-256 for apptainer_1.5.4_amd64.deb"*"differs from the vendor's published"* ]]
  sed -i '/_amd64.deb/d' "${FAKE_WWW}/sha256sums"
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4
  [ "$status" -eq 1 ]
  [[ "$output" == *"apptainer_1.5.4_amd64.deb is not listed in the vendor's published checksums"* ]]
  [ "$(calls_count apt-get)" -eq 0 ]
  [ ! -e "${FAKE_DB}/apptainer" ]
}

@test "apptainer: an agreeing pin passes" {
  make_apptainer_release 1.5.4
  pin="$(sha256sum "${FAKE_WWW}/apptainer_1.5.4_amd64.deb" | awk '{ print $1 }')"
  run bash "${IMAGE_DIR}/install-apptainer.sh" --version 1.5.4 --sha256 "${pin^^}"
  [ "$status" -eq 0 ]
  [ "$(cat "${FAKE_DB}/apptainer")" = "1.5.4" ]
}

@test "gpu: disabled does nothing" {
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled false --cuda-version 12.8 --repo-os ubuntu2204
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
}

@test "gpu: keeps an existing driver, installs CUDA toolkit and cuDNN for the version" {
  stub nvidia-smi
  make_cuda_repo
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12.8 --repo-os ubuntu2204 \
    --key-fingerprint eb693b3035cd5710e231e123a4b469963bf863cc
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok: cuda-keyring_1.1-1_all.deb"* ]]
  [[ "$output" == *"repository key fingerprint ok: EB693B3035CD5710E231E123A4B469963BF863CC"* ]]
  run stub_calls curl
  [[ "$output" == *"https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64/cuda-keyring_1.1-1_all.deb"* ]]
  [[ "$output" == *"https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64/Packages.gz"* ]]
  run stub_calls apt-get
  [[ "$output" == *"cuda-toolkit-12-8 cudnn9-cuda-12"* ]]
  [[ "$output" != *cuda-drivers* ]]
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12.8 --repo-os ubuntu2204
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
}

@test "gpu: installs the driver where none is present; rejects a bad CUDA version" {
  make_cuda_repo
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 13.0 --repo-os ubuntu2404
  [ "$status" -eq 0 ]
  run stub_calls apt-get
  [[ "$output" == *"cuda-toolkit-13-0 cudnn9-cuda-13 cuda-drivers"* ]]
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12 --repo-os ubuntu2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad CUDA version '12'"* ]]
}

@test "gpu: a keyring unlike NVIDIA's index or holding another key is never installed" {
  make_cuda_repo
  echo tampered >>"${FAKE_WWW}/cuda-keyring_1.1-1_all.deb"
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12.8 --repo-os ubuntu2204
  [ "$status" -eq 1 ]
  [[ "$output" == *"checksum mismatch for cuda-keyring_1.1-1_all.deb"* ]]
  make_cuda_repo
  FAKE_KEY_FPR=0000000000000000000000000000000000000001 run bash "${IMAGE_DIR}/install-gpu.sh" \
    --enabled true --cuda-version 12.8 --repo-os ubuntu2204 --key-fingerprint EB693B3035CD5710E231E123A4B469963BF863CC
  [ "$status" -eq 1 ]
  [[ "$output" == *"does not hold NVIDIA's repository key EB693B3035CD5710E231E123A4B469963BF863CC (found: 0000000000000000000000000000000000000001)"* ]]
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12.8 --repo-os ubuntu2204 \
    --keyring-sha256 "$(printf 'b%.0s' {1..64})"
  [ "$status" -eq 1 ]
  [[ "$output" == *"differs from the vendor's published"* ]]
  run bash "${IMAGE_DIR}/install-gpu.sh" --enabled true --cuda-version 12.8 --repo-os ubuntu2204 --key-fingerprint 3bf863cc
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad --key-fingerprint '3bf863cc'"* ]]
  [ "$(calls_count dpkg)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
}

write_env() {
  cat >"${BATS_TEST_TMPDIR}/image.env" <<ENV
# test env
POSIT_OS=ubuntu-2204
UBUNTU_CODENAME=jammy
NVIDIA_REPO_OS=ubuntu2204
WORKBENCH_VERSION=2025.05.1+513.pro3
WORKBENCH_URL_BASE=https://download2.rstudio.org/server
R_VERSIONS=4.6.1 4.5.3
R_DEFAULT=4.5.3
R_URL_BASE=https://cdn.posit.co/r
PYTHON_VERSIONS=3.12.11 3.11.13
PYTHON_DEFAULT=3.12.11
PYTHON_URL_BASE=https://cdn.posit.co/python
JUPYTERLAB_VERSION=4.6.6
PWB_JUPYTERLAB_VERSION=1.2.2
QUARTO_VERSION=1.10.20
QUARTO_URL_BASE=https://github.com/quarto-dev/quarto-cli/releases/download
APPTAINER_VERSION=1.5.4
APPTAINER_URL_BASE=https://github.com/apptainer/apptainer/releases/download
GPU_ENABLED=false
CUDA_VERSION=12.8
CUDA_REPO_BASE=https://developer.download.nvidia.com/compute/cuda/repos
RDS_CA_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
ENV
}

@test "install-image: runs every component from the env file; a second run changes nothing" {
  write_env
  printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' >"${FAKE_WWW}/global-bundle.pem"
  make_quarto_release 1.10.20
  make_apptainer_release 1.5.4
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/image.env"
  [ "$status" -eq 0 ]
  [[ "$output" == *"all components installed"* ]]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/R")" = "/opt/R/4.5.3/bin/R" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/python3")" = "/opt/python/3.12.11/bin/python3" ]
  [ "$(readlink "${PWB_ROOT}/usr/local/bin/quarto")" = "/opt/quarto/1.10.20/bin/quarto" ]
  [ "$(cat "${FAKE_DB}/apptainer")" = "1.5.4" ]
  [ -x "${PWB_ROOT}/opt/python/3.12.11/bin/jupyter" ]
  [[ "$output" == *"image complete"* ]]
  before="$(tree_snapshot)"
  rm -f "${BATS_TEST_TMPDIR}/calls/"*
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/image.env"
  [ "$status" -eq 0 ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
  run grep -c ' install ' "${FAKE_PIP_CALLS}"
  [ "$output" = "0" ]
  [ "$(tree_snapshot)" = "${before}" ]
}

@test "install-image: a missing key, a bad line or an unknown component fail clearly" {
  write_env
  grep -v '^R_DEFAULT=' "${BATS_TEST_TMPDIR}/image.env" >"${BATS_TEST_TMPDIR}/short.env"
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/short.env"
  [ "$status" -eq 1 ]
  [[ "$output" == *"missing R_DEFAULT"* ]]
  echo 'not an assignment' >>"${BATS_TEST_TMPDIR}/image.env"
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/image.env"
  [ "$status" -eq 1 ]
  [[ "$output" == *"image.env:23: expected KEY=VALUE"* ]]
  write_env
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/image.env" --only pandoc
  [ "$status" -eq 1 ]
  [[ "$output" == *"unknown component 'pandoc'"* ]]
  [ "$(calls_count curl)" -eq 0 ]
}

@test "install-image: a value is data, never run as code" {
  write_env
  sed -i 's|^R_DEFAULT=.*|R_DEFAULT=$(touch '"${BATS_TEST_TMPDIR}"'/pwned)|' "${BATS_TEST_TMPDIR}/image.env"
  run bash "${IMAGE_DIR}/install-image.sh" --env-file "${BATS_TEST_TMPDIR}/image.env" --only r
  [ "$status" -eq 1 ]
  [ ! -e "${BATS_TEST_TMPDIR}/pwned" ]
}

@test "scripts: sourcing runs nothing, --help prints the header, no cron entries" {
  local script
  for script in "${IMAGE_DIR}"/install-*.sh "${IMAGE_DIR}/verify-image.sh"; do
    run bash -c "source '${script}' || true; declare -F main >/dev/null && echo main-defined"
    [ "$status" -eq 0 ]
    [ "$output" = "main-defined" ]
    run bash "${script}" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"Usage: "* ]]
  done
  run bash -c "source '${IMAGE_DIR}/install-r.sh' || true; r_url https://cdn.posit.co/r ubuntu-2404 4.6.1"
  [ "$status" -eq 0 ]
  [ "$output" = "https://cdn.posit.co/r/ubuntu-2404/pkgs/r-4.6.1_1_amd64.deb" ]
  [ "$(calls_count curl)" -eq 0 ]
  [ "$(calls_count apt-get)" -eq 0 ]
  [ "$(calls_count systemctl)" -eq 0 ]
  run grep -lE 'crontab|/etc/cron' "${IMAGE_DIR}"/*.sh
  [ "$status" -eq 1 ]
}

@test "rds-ca: installs the bundle where database.conf names it, once; a pin must match" {
  printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' >"${FAKE_WWW}/global-bundle.pem"
  url="https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "${url}"
  [ "$status" -eq 0 ]
  [[ "$output" == *"not pinned"* ]]
  cmp "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem" "${FAKE_WWW}/global-bundle.pem"
  [ "$(stat -c %a "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem")" = 644 ]
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "${url}"
  [[ "$output" == *"already installed"* ]]
  [[ "$(stub_calls curl)" == *"${url}"* ]]
  [ "$(stub_calls curl | grep -c global-bundle)" = 1 ]  # the second run downloaded nothing
  sum="$(sha256sum "${FAKE_WWW}/global-bundle.pem" | cut -d' ' -f1)"
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "${url}" --sha256 "${sum}"
  [ "$status" -eq 0 ]
  [[ "$output" == *"already installed"* ]]
  rm "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem"
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "${url}" --sha256 "${sum}"
  [ "$status" -eq 0 ]
  [[ "$output" == *"checksum ok"* && "$output" != *"not pinned"* ]]
  rm "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem"
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "${url}" --sha256 "$(printf '0%.0s' {1..64})"
  [ "$status" -ne 0 ]
  [[ "$output" == *"checksum mismatch"* ]]
}

@test "rds-ca: a download that is no certificate bundle is refused" {
  printf 'not found\n' >"${FAKE_WWW}/global-bundle.pem"
  run bash "${IMAGE_DIR}/install-rds-ca.sh" --url "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
  [ "$status" -ne 0 ]
  [[ "$output" == *"is not a PEM certificate bundle"* ]]
  [ ! -e "${PWB_ROOT}/etc/pwbcluster/rds-ca-bundle.pem" ]
}
