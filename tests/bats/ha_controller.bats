#!/usr/bin/env bats
# cluster/ha/controller-ha.sh, one function at a time, with systemctl, ip, visudo stubbed.
# The whole script against real Slurm is tested by tests/ha (root, namespaces).

# Globals set here are read by the sourced script's functions.
# shellcheck disable=SC2034

load test_helper

SCRIPT="${REPO_ROOT}/cluster/ha/controller-ha.sh"

setup() {
  stub_setup
  stub systemctl
  stub timeout 'shift; exec "$@"'
  ETC="${BATS_TEST_TMPDIR}/etc"
  SHARED="${BATS_TEST_TMPDIR}/efs/pwb-ha"
  mkdir -p "${ETC}" "${BATS_TEST_TMPDIR}/prefix/sbin" "${BATS_TEST_TMPDIR}/prefix/bin"
  printf '#!/bin/sh\n' >"${BATS_TEST_TMPDIR}/prefix/sbin/slurmctld"
  chmod +x "${BATS_TEST_TMPDIR}/prefix/sbin/slurmctld"
  cat >"${ETC}/slurm.conf" <<EOF
ClusterName=t
SlurmUser=$(id -un)
StateSaveLocation=${BATS_TEST_TMPDIR}/local-state
SlurmctldPidFile=${BATS_TEST_TMPDIR}/slurmctld.pid
SlurmctldTimeout=300
include slurm_parallelcluster.conf
EOF
  # The script ends with `[[ BASH_SOURCE == $0 ]] && main`, false when sourced.
  # shellcheck source=cluster/ha/controller-ha.sh
  source "${SCRIPT}" || true
  set +o nounset
  SLURM_ETC="${ETC}"
  SLURM_PREFIX="${BATS_TEST_TMPDIR}/prefix"
  SHARED_DIR="${SHARED}"
  SYSTEMD_DIR="${BATS_TEST_TMPDIR}/systemd"
  INSTALL_DIR="${BATS_TEST_TMPDIR}/opt"
  LOCAL_DIR="${BATS_TEST_TMPDIR}/var"
  # S3 as a directory: s3://BUCKET/KEY is ${FAKE_S3}/BUCKET/KEY.
  FAKE_S3="${BATS_TEST_TMPDIR}/s3"
  SCALING_SUMS_URI="s3://bucket/ha/scaling.sha256sums"
  stub aws 'args=(); for a in "$@"; do case "$a" in --cli-*|[0-9]*|--only-show-errors) ;; *) args+=("$a") ;; esac; done
src="${args[2]}" dest="${args[3]}"
[[ "${src}" == s3://* ]] && src="'"${FAKE_S3}"'/${src#s3://}"
[[ "${dest}" == s3://* ]] && { dest="'"${FAKE_S3}"'/${dest#s3://}"; mkdir -p "$(dirname "${dest}")"; }
[[ -f "${src}" ]] || { echo "fatal error: 404" >&2; exit 1; }
cp "${src}" "${dest}"'
}

# head_scaling [SUDOERS]: the head's pcluster scaling files, published to ${SHARED}.
head_scaling() {
  export PWB_HA_PCLUSTER_SCRIPTS="${BATS_TEST_TMPDIR}/head/scripts"
  mkdir -p "${PWB_HA_PCLUSTER_SCRIPTS}" "${BATS_TEST_TMPDIR}/head/conf"
  printf '#!/bin/sh\n' >"${PWB_HA_PCLUSTER_SCRIPTS}/slurm_resume"
  chmod 0755 "${PWB_HA_PCLUSTER_SCRIPTS}/slurm_resume"
  echo "[slurm_resume]" >"${BATS_TEST_TMPDIR}/head/conf/parallelcluster_slurm_resume.conf"
  echo "${1:-slurm ALL=(pcluster-admin) NOPASSWD: ALL}" >"${BATS_TEST_TMPDIR}/head/sudoers"
  SCALING_SCRIPTS="${PWB_HA_PCLUSTER_SCRIPTS}"
  SCALING_CONF="${BATS_TEST_TMPDIR}/head/conf"
  SCALING_SUDOERS="${BATS_TEST_TMPDIR}/head/sudoers"
  mkdir -p "${SHARED}/scaling"
  run publish_scaling
  [ "${status}" -eq 0 ]
  # From here on, this is a login node: it installs them where slurm.conf names them.
  SCALING_SCRIPTS="${BATS_TEST_TMPDIR}/login/scripts"
  SCALING_CONF="${BATS_TEST_TMPDIR}/login/conf"
  SCALING_SUDOERS="${BATS_TEST_TMPDIR}/login/sudoers"
}

# scaling_refused MESSAGE: install_scaling fails with MESSAGE and installs nothing.
scaling_refused() {
  stub visudo
  run install_scaling
  [ "${status}" -eq 1 ] || { echo "${output}"; return 1; }
  [[ "${output}" == *"$1"* ]] || { echo "${output}"; return 1; }
  [ ! -e "${BATS_TEST_TMPDIR}/login" ] || { echo "installed: $(find "${BATS_TEST_TMPDIR}/login")"; return 1; }
  [ -z "$(stub_calls visudo)" ]
}

@test "--help prints the header and exits 0" {
  run bash "${SCRIPT}" --help
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"Usage: controller-ha.sh --role head|login"* ]]
  [[ "${output}" == *"--shared-dir DIR"* ]]
}

@test "an unknown argument or a bad role is refused with a message" {
  run bash "${SCRIPT}" --bogus
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"[controller-ha] ERROR: unknown argument: --bogus"* ]]
  run bash "${SCRIPT}" --role primary --shared-dir /x --slurmctld-timeout 5
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"--role must be head or login"* ]]
}

@test "timeouts are validated: positive, stale-after above twice the interval" {
  ROLE=head SLURMCTLD_TIMEOUT=0
  run validate_args
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"--slurmctld-timeout must be a positive integer"* ]]
  SLURMCTLD_TIMEOUT=5 INTERVAL=30 STALE_AFTER=60
  run validate_args
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"--stale-after (60) must exceed twice --interval (30)"* ]]
  STALE_AFTER=61 NODE_NAME=head NODE_ADDRESS=10.0.0.5
  run validate_args
  [ "${status}" -eq 0 ]
}

@test "the default address is the source of the default route" {
  stub ip 'echo "192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.3.17 uid 0"'
  run default_address
  [ "${status}" -eq 0 ]
  [ "${output}" = "10.0.3.17" ]
}

@test "slurm.conf values are read as pcluster wrote them, last one winning" {
  printf 'SlurmctldTimeout=20\n' >>"${ETC}/slurm.conf"
  run slurm_conf_value SlurmctldTimeout
  [ "${status}" -eq 0 ]
  [ "${output}" = "20" ]
  run slurm_conf_value statesavelocation
  [ "${output}" = "${BATS_TEST_TMPDIR}/local-state" ]
}

@test "head: the local state is copied to shared storage once, slurmctld stopped first" {
  INIT=systemd ROLE=head
  mkdir -p "${BATS_TEST_TMPDIR}/local-state"
  echo jobs >"${BATS_TEST_TMPDIR}/local-state/job_state"
  prepare_shared_dir
  run migrate_state
  [ "${status}" -eq 0 ]
  [ "$(cat "${SHARED}/state/job_state")" = "jobs" ]
  [ "$(stub_calls systemctl)" = "stop slurmctld.service" ]
  echo newer >"${BATS_TEST_TMPDIR}/local-state/job_state"
  run migrate_state
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"already on shared storage"* ]]
  [ "$(cat "${SHARED}/state/job_state")" = "jobs" ]
  [ "$(stub_calls systemctl | wc -l)" -eq 1 ]
}

@test "head publishes the pcluster scaling programs; a login node installs them" {
  head_scaling
  # The digests went to S3 from the head's own files.
  grep -qx "$(sha256sum <"${BATS_TEST_TMPDIR}/head/sudoers" | cut -d' ' -f1)  sudoers" \
    "${FAKE_S3}/bucket/ha/scaling.sha256sums"
  [ "$(wc -l <"${FAKE_S3}/bucket/ha/scaling.sha256sums")" = 3 ]
  stub visudo
  run install_scaling
  [ "${status}" -eq 0 ]
  [ -x "${BATS_TEST_TMPDIR}/login/scripts/slurm_resume" ]
  [ -f "${BATS_TEST_TMPDIR}/login/conf/parallelcluster_slurm_resume.conf" ]
  [ "$(stat -c %a "${BATS_TEST_TMPDIR}/login/sudoers")" = "440" ]
  [[ "$(stub_calls visudo)" == "-cqf ${LOCAL_DIR}/scaling.new/files/sudoers" ]]
  [ ! -e "${LOCAL_DIR}/scaling.new" ]
}

@test "scaling: a sudoers rule planted in the shared directory is refused, nothing installed" {
  head_scaling
  echo "ALL ALL=(ALL) NOPASSWD: ALL" >"${SHARED}/scaling/sudoers"
  scaling_refused "a published scaling file does not match the head's digests: not installed"
}

@test "scaling: a changed resume program is refused, nothing installed" {
  head_scaling
  printf '#!/bin/sh\ncp /bin/bash /tmp/rootshell\n' >"${SHARED}/scaling/scripts/slurm_resume"
  scaling_refused "does not match the head's digests"
}

@test "scaling: a planted extra file is refused, nothing installed" {
  head_scaling
  printf '#!/bin/sh\n' >"${SHARED}/scaling/scripts/slurm_fleet_status_manager"
  scaling_refused "holds files the head did not publish: not installed"
}

@test "scaling: a rewritten digest list on shared storage does not help; without the S3 list nothing installs" {
  head_scaling
  # Only the S3 object counts: one on shared storage is just another planted file.
  (cd "${SHARED}/scaling" && find . -type f -printf '%P\0' | xargs -0 sha256sum) >"${SHARED}/scaling/SHA256SUMS"
  scaling_refused "holds files the head did not publish"
  rm "${SHARED}/scaling/SHA256SUMS" "${FAKE_S3}/bucket/ha/scaling.sha256sums"
  scaling_refused "cannot read the scaling files' digests"
  SCALING_SUMS_URI=""
  scaling_refused "no --scaling-sums-uri"
}

@test "a sudoers file that does not parse is not installed" {
  head_scaling "garbage"
  stub visudo 'exit 1'
  run install_scaling
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"does not parse: not installed"* ]]
  [ ! -e "${BATS_TEST_TMPDIR}/login/sudoers" ]
}

@test "without published programs the login node warns and goes on" {
  run install_scaling
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"cannot scale compute nodes"* ]]
}

@test "munge key: installed and munge restarted when it differs, untouched when equal" {
  # shellcheck disable=SC2016 # expanded by the stub, not here
  stub install 'cp "${@: -2:1}" "${@: -1}"'
  INIT=systemd
  MUNGE_KEY_SRC="${BATS_TEST_TMPDIR}/shared.key"
  MUNGE_KEY_DEST="${BATS_TEST_TMPDIR}/munge.key"
  echo key1 >"${MUNGE_KEY_SRC}"
  run install_munge_key
  [ "${status}" -eq 0 ]
  [ "$(cat "${MUNGE_KEY_DEST}")" = "key1" ]
  [ "$(stub_calls systemctl)" = "restart munge.service" ]
  run install_munge_key
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"already installed"* ]]
  [ "$(stub_calls systemctl | wc -l)" -eq 1 ]
  MUNGE_KEY_SRC=none
  run install_munge_key
  [ "${status}" -eq 0 ]
}

@test "a missing munge key is an error" {
  MUNGE_KEY_SRC="${BATS_TEST_TMPDIR}/absent.key"
  run install_munge_key
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"munge key ${BATS_TEST_TMPDIR}/absent.key not found"* ]]
}

@test "login units: backup slurmctld and timer, SLURM_CONF set for a non-default etc" {
  ROLE=login INTERVAL=30
  run write_units
  [ "${status}" -eq 0 ]
  unit="$(cat "${SYSTEMD_DIR}/pwb-slurmctld.service")"
  [[ "${unit}" == *"ExecStart=${BATS_TEST_TMPDIR}/prefix/sbin/slurmctld -D -s"* ]]
  [[ "${unit}" == *"Environment=SLURM_CONF=${ETC}/slurm.conf"* ]]
  [[ "$(cat "${SYSTEMD_DIR}/pwb-ha-reconcile.timer")" == *"OnUnitActiveSec=30"* ]]
  [ ! -e "${SYSTEMD_DIR}/pwb-ha-reconcile.path" ]
  [[ "$(cat "${SYSTEMD_DIR}/pwb-ha-handback.service")" == *"--watch --watch-grace 4"* ]]
  before="$(stat -c %Y.%s "${SYSTEMD_DIR}"/*)"
  sleep 1
  run write_units
  [ "${status}" -eq 0 ]
  [ "$(stat -c %Y.%s "${SYSTEMD_DIR}"/*)" = "${before}" ]
}

@test "head units: a path unit watches the files pcluster rewrites" {
  ROLE="head"
  run write_units
  [ "${status}" -eq 0 ]
  path_unit="$(cat "${SYSTEMD_DIR}/pwb-ha-reconcile.path")"
  [[ "${path_unit}" == *"PathChanged=${ETC}/slurm_parallelcluster.conf"* ]]
  [ ! -e "${SYSTEMD_DIR}/pwb-slurmctld.service" ]
}

@test "units are enabled through systemctl, and not at all with --init none" {
  ROLE=login INIT=systemd
  run enable_units
  [ "${status}" -eq 0 ]
  [ "$(stub_calls systemctl)" = "daemon-reload
enable pwb-slurmctld.service
enable --now pwb-ha-reconcile.timer pwb-ha-handback.service" ]
  rm -f "${BATS_TEST_TMPDIR}/calls/systemctl"
  ROLE="head"
  run enable_units
  [ "$(stub_calls systemctl | tail -1)" = "enable --now pwb-ha-reconcile.timer pwb-ha-reconcile.path" ]
  rm -f "${BATS_TEST_TMPDIR}/calls/systemctl"
  INIT=none
  run enable_units
  [ "${status}" -eq 0 ]
  [ -z "$(stub_calls systemctl)" ]
}

@test "the reconciler settings are written as JSON from arguments, quotes and all" {
  ROLE=login NODE_NAME='ip-10-0-0-5' NODE_ADDRESS=10.0.0.5 SLURMCTLD_TIMEOUT=5 SHARED_DIR="${SHARED}/a \"b\""
  run install_reconciler
  [ "${status}" -eq 0 ]
  [ -x "${INSTALL_DIR}/reconcile.py" ]
  run python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["shared_dir"], d["slurmctld_unit"], d["role"])' "${LOCAL_DIR}/reconcile.json"
  [ "${status}" -eq 0 ]
  [ "${output}" = "${SHARED}/a \"b\" pwb-slurmctld.service login" ]
}

@test "a login node gives up waiting for the head after --wait seconds" {
  WAIT=1
  stub sleep 'exit 0'
  run wait_for_head
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"head did not set up ${SHARED} within 1 s"* ]]
}

@test "login: the slurmctld log file is created for SlurmUser, kept when present" {
  printf 'SlurmctldLogFile=%s/log/slurmctld.log\n' "${BATS_TEST_TMPDIR}" >>"${ETC}/slurm.conf"
  run prepare_local_files
  [ "${status}" -eq 0 ]
  [ "$(stat -c '%U %a' "${BATS_TEST_TMPDIR}/log/slurmctld.log")" = "$(id -un) 640" ]
  echo "old line" >"${BATS_TEST_TMPDIR}/log/slurmctld.log"
  run prepare_local_files
  [ "${status}" -eq 0 ]
  [ "$(cat "${BATS_TEST_TMPDIR}/log/slurmctld.log")" = "old line" ]
}
