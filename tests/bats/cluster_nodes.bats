#!/usr/bin/env bats
# The cluster node scripts (cluster/*.sh) with every outside command stubbed: a fake aws
# CLI serving a local "bucket" laid out as the cluster stage uploads it (rendered by the
# real generator, tests/cluster/fixtures.py) and fake Secrets Manager values.

load test_helper

setup_file() {
  export BASE="${BATS_FILE_TMPDIR}/base"
  local python="${PWBCLUSTER_PYTHON:-${REPO_ROOT}/.venv/bin/python}"
  [[ -x "${python}" ]] || python="python3"
  "${python}" "${REPO_ROOT}/tests/cluster/fixtures.py" "${BASE}" --audit --license
}

setup() {
  stub_setup
  cp "${REPO_ROOT}/tests/bats/cluster_fakes/aws" "${BATS_TEST_TMPDIR}/bin/aws"
  T="${BATS_TEST_TMPDIR}"
  cp -R "${BASE}/." "${T}/world"
  export FAKE_S3="${T}/world/s3" FAKE_SECRETS="${T}/world/secrets"
  ENV_URI="$(cat "${T}/world/env-uri")"
  NODE_ENV="$(find "${FAKE_S3}" -name node.env)"
  set_env WORKBENCH_SHARED_DIR "${T}/shared"
  set_env LDAP_CA_PATH "${T}/etc/pwbcluster/ldap-ca.pem"
  set_env HA_CONTROLLERS false
  export PWB_HOME="${T}/pwb" RSTUDIO_ETC="${T}/etc/rstudio" ROOT_OWNER="$(id -un):$(id -gn)"
  export SHARED_WAIT=5 HEALTH_TRIES=1 HEALTH_SLEEP=0 FAKE_NODE_IP=10.0.1.15
  export FAKE_LB_DNS="example-login-0123456789.elb.eu-west-1.amazonaws.com"
  export TRUST_ANCHORS="${T}/trust" TRUST_UPDATE=update-trust SYSTEMD_DIR="${T}/systemd"
  export LICENSE_DIR="${T}/var/lib/rstudio-server" WORKBENCH_OWNER="${ROOT_OWNER}"
  stub update-trust
  stub ip 'printf "1.1.1.1 via 10.0.1.1 dev eth0 src %s uid 0\n" "${FAKE_NODE_IP}"'
  stub systemctl 'state="'"${T}"'/active-${@: -1}"
case "$1" in
  is-active) [[ -f "${state}" ]] ;;
  restart) touch "${state}" ;;
esac'
  stub curl
  # psql as the head node's role check sees it: the role is in place (a test that wants
  # it missing replaces the stub).
  stub psql 'cat >/dev/null; echo t'
  stub rstudio-server
  stub systemd-run
  stub apptainer
}

# set_env KEY VALUE: change one line of the uploaded node.env, as the stage would have
# uploaded it: node.env's line of SHA256SUMS follows.
set_env() {
  sed -i "s|^$1=.*|$1=$2|" "${NODE_ENV}"
  reseal node.env
}

# reseal FILE: FILE (relative to the bundle's root) listed in SHA256SUMS with its current
# digest (or no longer listed, when deleted): a bundle the stage would upload.
reseal() {
  local root sums
  root="$(dirname "${NODE_ENV}")" sums="$(dirname "${NODE_ENV}")/SHA256SUMS"
  sed -i "\\|^[0-9a-f]\\{64\\}  $1\$|d" "${sums}"
  if [[ -e "${root}/$1" ]]; then (cd "${root}" && sha256sum "$1") >>"${sums}"; fi
}

# node SCRIPT: run cluster/SCRIPT.sh as ParallelCluster would, with the stage's Args.
node() {
  run bash "${REPO_ROOT}/cluster/$1.sh" --env-uri "${ENV_URI}"
}

secret_of() {
  cat "${FAKE_SECRETS}/$(grep "^$1=" "${NODE_ENV}" | cut -d= -f2- | tr '/:' '__')"
}

# snapshot DIR: path, mode, owner, mtime and content hash of every file under DIR.
snapshot() {
  find "$1" -type f -printf '%p %m %u %T@\n' | sort
  find "$1" -type f -print0 | sort -z | xargs -0 sha256sum
}

run_head() { node head-node; }
run_login() {
  node login-node
  printf "%s\n" "$output" >"${BATS_TEST_TMPDIR}/login.out"
}

@test "head node puts the Workbench configuration onto shared storage, no secret in it" {
  run_head
  [ "$status" -eq 0 ]
  [ -f "${T}/shared/etc/rstudio/rserver.conf" ]
  [ -f "${T}/shared/etc/rstudio.published" ]
  [ "$(stat -c %a "${T}/shared/etc/rstudio/database.conf")" = 600 ]
  [ "$(stat -c %a "${T}/shared/etc/rstudio/rserver.conf")" = 644 ]
  [ "$(stat -c %a "${T}/shared/keys/launcher.pem")" = 600 ]
  [ "$(stat -c %a "${T}/shared/shared-storage")" = 1777 ]
  run grep -rF "$(secret_of DB_PASSWORD_SECRET_ARN)" "${T}/shared"
  [ "$status" -eq 1 ]
  # The head node reads the role passwords (to check its database roles), nothing else:
  # no cookie key, no licence, and no master password while the roles are in place.
  run stub_calls aws
  reads="$(grep -o 'get-secret-value --secret-id [^ ]*' <<<"$output" | awk '{print $3}' | sort -u)"
  expected="$(grep -E '^(AUDIT_)?DB_PASSWORD_SECRET_ARN=' "${NODE_ENV}" | cut -d= -f2- | sort -u)"
  [ -n "${expected}" ]
  [ "${reads}" = "${expected}" ]
}

@test "head node creates a missing database role with the master password, never on psql's command line" {
  # The role check fails until the creation ran, as a real server would answer.
  stub psql 'input="$(cat)"
if [[ "${input}" == *"CREATE ROLE"* ]]; then printf "%s" "${input}" >"'"${T}"'/psql-created-${PGPASSWORD:0:3}"; touch "'"${T}"'/role-made"; exit 0; fi
[[ -f "'"${T}"'/role-made" ]] && echo t || exit 2'
  run_head
  [ "$status" -eq 0 ]
  [[ "$output" == *"database role workbench on"*"created"* ]]
  run stub_calls aws
  [[ "$output" == *"get-secret-value --secret-id $(grep ^DB_MASTER_PASSWORD_SECRET_ARN= "${NODE_ENV}" | cut -d= -f2-)"* ]]
  [[ "$output" != *"$(grep ^COOKIE_KEY_SECRET_ARN= "${NODE_ENV}" | cut -d= -f2-)"* ]]
  run stub_calls psql
  [[ "$output" != *"$(secret_of DB_PASSWORD_SECRET_ARN)"* ]]
  [[ "$output" != *"$(secret_of DB_MASTER_PASSWORD_SECRET_ARN)"* ]]
  [[ "$output" == *"sslmode=verify-full"* && "$output" == *"user=rstudio "* ]]
  # Sent as the master (its password in psql's environment), the role's password on stdin.
  master="$(secret_of DB_MASTER_PASSWORD_SECRET_ARN)"
  [ -f "${T}/psql-created-${master:0:3}" ]
}

@test "head node: a second run changes nothing" {
  run_head
  [ "$status" -eq 0 ]
  before="$(snapshot "${T}/shared")"
  run_head
  [ "$status" -eq 0 ]
  [ "$(snapshot "${T}/shared")" = "${before}" ]
}

@test "login node fetches its secrets from Secrets Manager with bounded calls, not from disk" {
  run_head
  [ "$status" -eq 0 ]
  run_login
  [ "$status" -eq 0 ]
  calls="$(stub_calls aws)"
  [[ "$calls" == *"get-secret-value --secret-id $(grep ^DB_PASSWORD_SECRET_ARN= "${NODE_ENV}" | cut -d= -f2-)"* ]]
  [[ "$calls" == *"get-secret-value --secret-id $(grep ^COOKIE_KEY_SECRET_ARN= "${NODE_ENV}" | cut -d= -f2-)"* ]]
  [ -z "$(stub_calls aws-unbounded)" ]
  grep -qxF "password=$(secret_of DB_PASSWORD_SECRET_ARN)" "${RSTUDIO_ETC}/database.conf"
  grep -qxF "password=$(secret_of AUDIT_DB_PASSWORD_SECRET_ARN)" "${RSTUDIO_ETC}/audit-database.conf"
  [ "$(cat "${RSTUDIO_ETC}/secure-cookie-key")" = "$(secret_of COOKIE_KEY_SECRET_ARN)" ]
  for f in database.conf audit-database.conf secure-cookie-key; do
    [ "$(stat -c '%a %U' "${RSTUDIO_ETC}/${f}")" = "600 $(id -un)" ]
  done
  # The values exist nowhere the node could have read them from but Secrets Manager.
  for key in DB_PASSWORD_SECRET_ARN COOKIE_KEY_SECRET_ARN AUDIT_DB_PASSWORD_SECRET_ARN; do
    run grep -rlF -- "$(secret_of "${key}")" "${FAKE_S3}" "${T}/shared" "${PWB_HOME}"
    [ "$status" -eq 1 ]
  done
  # Over TLS, through the balancer's AWS name (the generated certificate covers it).
  grep -qx "launcher-sessions-callback-address=https://${FAKE_LB_DNS}:443" "${RSTUDIO_ETC}/rserver.conf"
  grep -qx "auth-cookies-force-secure=1" "${RSTUDIO_ETC}/rserver.conf"
  grep -qx "www-host-name=10.0.1.15" "${RSTUDIO_ETC}/load-balancer"
  [[ "$(stub_calls systemctl)" == *"restart rstudio-server"* ]]
}

@test "login node: a second run changes nothing and restarts nothing" {
  run_head
  run_login
  [ "$status" -eq 0 ]
  before="$(snapshot "${RSTUDIO_ETC}")"
  restarts="$(stub_calls systemctl | grep -c restart)"
  run_login
  [ "$status" -eq 0 ]
  [ "$(snapshot "${RSTUDIO_ETC}")" = "${before}" ]
  [ "$(stub_calls systemctl | grep -c restart)" = "${restarts}" ]
}

@test "login node survives failures of the licence, controller HA, LB lookup and health check" {
  run_head
  set_env HA_CONTROLLERS true
  set_env SLURMCTLD_TIMEOUT 7
  printf '#!/usr/bin/env bash\necho "[controller-ha] boom" >&2\nexit 1\n' \
    >"$(find "${FAKE_S3}" -name controller-ha.sh)"
  reseal ha/controller-ha.sh
  stub rstudio-server 'exit 1'
  stub curl 'exit 7'
  unset FAKE_LB_DNS
  run_login
  [ "$status" -eq 0 ]
  [[ "$output" == *"optional step 'licence' failed"* ]]
  [[ "$output" == *"optional step 'controller-ha' failed"* ]]
  [[ "$output" == *"optional step 'health-check' failed"* ]]
  grep -qx "launcher-sessions-callback-address=http://10.0.1.15:8787" "${RSTUDIO_ETC}/rserver.conf"
  [[ "$(stub_calls systemctl)" == *"restart rstudio-server"* ]]
}

@test "login node fails when the database password cannot be read" {
  run_head
  rm "${FAKE_SECRETS}/$(grep ^DB_PASSWORD_SECRET_ARN= "${NODE_ENV}" | cut -d= -f2- | tr '/:' '__')"
  run_login
  [ "$status" -eq 1 ]
  [[ "$output" == *"[login-node] ERROR: cannot read the database.conf password"* ]]
  [[ "$(stub_calls systemctl)" != *restart* ]]
}

@test "two login nodes get identical files except their load-balancer entry" {
  run_head
  RSTUDIO_ETC="${T}/node1" FAKE_NODE_IP=10.0.1.15 run_login
  [ "$status" -eq 0 ]
  RSTUDIO_ETC="${T}/node2" FAKE_NODE_IP=10.0.1.16 run_login
  [ "$status" -eq 0 ]
  run diff -rq "${T}/node1" "${T}/node2"
  [ "$status" -eq 1 ]
  [ "$output" = "Files ${T}/node1/load-balancer and ${T}/node2/load-balancer differ" ]
  [ "$(ls "${T}/node1" | wc -l)" -gt 15 ]
}

@test "without a licence the login node says Workbench needs one" {
  run_head
  set_env LICENSE_SECRET_ARN ""
  run_login
  [ "$status" -eq 0 ]
  [[ "$output" == *"Posit Workbench needs a licence key, file or licence server to serve users, and this node has none"* ]]
  [[ "$output" != *"UNLICENSED"* ]]
  [ -z "$(stub_calls rstudio-server)" ]
}

@test "a licence key is deactivated when the login node stops, within a bound" {
  run_head
  run_login
  [ "$status" -eq 0 ]
  unit="${SYSTEMD_DIR}/pwbcluster-license-deactivate.service"
  grep -qx "ExecStop=/usr/bin/timeout 60 /usr/sbin/rstudio-server license-manager deactivate" "${unit}"
  grep -qx "TimeoutStopSec=90" "${unit}"
  # Stopped before the network and Workbench go down at shutdown.
  grep -qx "After=network-online.target rstudio-server.service" "${unit}"
  [[ "$(stub_calls systemctl)" == *"enable --now pwbcluster-license-deactivate.service"* ]]
}

@test "a licence file is put where Workbench reads it, owned by its account, and needs no activation" {
  run_head
  set_env LICENSE_KIND file
  arn="$(grep '^LICENSE_SECRET_ARN=' "${NODE_ENV}" | cut -d= -f2-)"
  printf 'line-one\nline-two\n' >"${FAKE_SECRETS}/$(printf '%s' "${arn}" | tr '/:' '__')"
  run_login
  [ "$status" -eq 0 ]
  [ "$(stat -c '%a %U' "${LICENSE_DIR}/pwbcluster.lic")" = "600 $(id -un)" ]
  grep -qx line-two "${LICENSE_DIR}/pwbcluster.lic"
  [[ "$(stub_calls rstudio-server)" != *"license-manager"* ]]
  [ ! -e "${SYSTEMD_DIR}/pwbcluster-license-deactivate.service" ]
  [[ "$(stub_calls systemctl)" == *"restart rstudio-server"* ]]
  # A new file restarts Workbench (it reads the file at start); the same one does not.
  restarts="$(stub_calls systemctl | grep -c 'restart rstudio-server')"
  run_login
  [ "$(stub_calls systemctl | grep -c 'restart rstudio-server')" = "${restarts}" ]
  printf 'line-three\n' >"${FAKE_SECRETS}/$(printf '%s' "${arn}" | tr '/:' '__')"
  run_login
  [ "$(stub_calls systemctl | grep -c 'restart rstudio-server')" -gt "${restarts}" ]
}

@test "a several-line secret given as a key is refused, not activated" {
  run_head
  arn="$(grep '^LICENSE_SECRET_ARN=' "${NODE_ENV}" | cut -d= -f2-)"
  printf 'line-one\nline-two\n' >"${FAKE_SECRETS}/$(printf '%s' "${arn}" | tr '/:' '__')"
  run_login
  [ "$status" -eq 0 ]
  [[ "$output" == *"set cluster.workbench.license_kind: file"* ]]
  [[ "$output" == *"optional step 'licence' failed"* ]]
  [[ "$(stub_calls rstudio-server)" != *"license-manager activate"* ]]
}

@test "a floating licence server is named once, and an earlier licence file is removed" {
  run_head
  mkdir -p "${LICENSE_DIR}" && echo old >"${LICENSE_DIR}/pwbcluster.lic"
  set_env LICENSE_KIND server
  set_env LICENSE_SECRET_ARN ""
  set_env LICENSE_SERVER 10.1.2.3:8989
  run_login
  [ "$status" -eq 0 ]
  [ "$(stub_calls rstudio-server | grep -c 'license-manager license-server 10.1.2.3:8989')" = 1 ]
  [ ! -e "${LICENSE_DIR}/pwbcluster.lic" ]
  [ ! -e "${SYSTEMD_DIR}/pwbcluster-license-deactivate.service" ]
  run_login
  [ "$status" -eq 0 ]
  [ "$(stub_calls rstudio-server | grep -c 'license-manager license-server')" = 1 ]
}

@test "the licence is activated once per value" {
  run_head
  run_login
  [ "$status" -eq 0 ]
  [ "$(stub_calls rstudio-server | grep -c 'license-manager activate')" = 1 ]
  run_login
  [ "$status" -eq 0 ]
  [ "$(stub_calls rstudio-server | grep -c 'license-manager activate')" = 1 ]
}

@test "login node: with a hostname, sessions call back to it" {
  set_env WORKBENCH_HOSTNAME workbench.example.com
  run_head
  run_login
  [ "$status" -eq 0 ]
  grep -qx "launcher-sessions-callback-address=https://workbench.example.com:443" "${RSTUDIO_ETC}/rserver.conf"
}

@test "node start trusts the generated Workbench CA, once, and only when it is generated" {
  node node-start
  [ "$status" -eq 0 ]
  cmp "${TRUST_ANCHORS}/pwbcluster-workbench.crt" "$(find "${FAKE_S3}" -name workbench-ca.pem)"
  [ "$(stub_calls update-trust | wc -l)" = 1 ]
  node node-start
  [ "$status" -eq 0 ]
  [ "$(stub_calls update-trust | wc -l)" = 1 ]  # unchanged anchor: no rebuild
  rm "${TRUST_ANCHORS}/pwbcluster-workbench.crt"
  set_env WORKBENCH_CA false
  node node-start
  [ "$status" -eq 0 ]
  [ ! -e "${TRUST_ANCHORS}/pwbcluster-workbench.crt" ]
  set_env WORKBENCH_CA true
  find "${FAKE_S3}" -name workbench-ca.pem -delete
  reseal workbench-ca.pem
  node node-start
  [ "$status" -ne 0 ]
  [[ "$output" == *"Workbench CA certificate is missing"* ]]
}

@test "node start installs the directory CA for ldaps, and warns when TLS is off" {
  node node-start
  [ "$status" -eq 0 ]
  cmp "${T}/etc/pwbcluster/ldap-ca.pem" "$(find "${FAKE_S3}" -name ldap-ca.pem)"
  rm "${T}/etc/pwbcluster/ldap-ca.pem"
  set_env LDAP_TLS false
  node node-start
  [ "$status" -eq 0 ]
  [[ "$output" == *"LDAP traffic is not encrypted"* ]]
  [ ! -e "${T}/etc/pwbcluster/ldap-ca.pem" ]
}

@test "compute node installs nothing" {
  for cmd in apt-get apt yum dnf pip pip3 curl wget; do stub "${cmd}"; done
  node compute-node
  [ "$status" -eq 0 ]
  for cmd in apt-get apt yum dnf pip pip3 curl wget; do
    [ -z "$(stub_calls "${cmd}")" ]
  done
  [[ "$output" == *"nothing installed"* ]]
}

@test "a bad --env-uri is refused before anything runs" {
  run bash "${REPO_ROOT}/cluster/login-node.sh" --env-uri "https://example.com/node.env"
  [ "$status" -eq 1 ]
  [[ "$output" == *"--env-uri s3://BUCKET/PREFIX/node.env is required"* ]]
  [ -z "$(stub_calls aws)" ]
}

# refused_everywhere MESSAGE: each entry script refuses the bundle with MESSAGE before it
# sourced, read or installed anything (no copy swapped in, no secret read, no file written).
refused_everywhere() {
  local script
  for script in node-start head-node login-node compute-node; do
    node "${script}"
    [ "$status" -eq 1 ] || { echo "${script} was not refused: ${output}"; return 1; }
    [[ "$output" == *"$1"* ]] || { echo "${script}: ${output}"; return 1; }
    [ ! -e "${PWB_HOME}/cluster" ] || { echo "${script} swapped the copy in"; return 1; }
    [ ! -e "${T}/pwned" ] || { echo "${script} ran planted code"; return 1; }
  done
  for path in "${T}/shared" "${RSTUDIO_ETC}" "${TRUST_ANCHORS}" "${T}/etc/pwbcluster" "${LICENSE_DIR}"; do
    [ ! -e "${path}" ] || { echo "${path} was written"; return 1; }
  done
  [ -z "$(stub_calls systemctl)$(stub_calls psql)$(stub_calls update-trust)$(stub_calls rstudio-server)" ]
  if stub_calls aws | grep -v ' s3 cp --recursive ' | grep -q .; then
    echo "calls beyond the fetch: $(stub_calls aws)"
    return 1
  fi
}

# bundle_root: the uploaded cluster/ prefix in the fake bucket.
bundle_root() { dirname "${NODE_ENV}"; }

@test "bundle: the stage's bundle passes the check on every node script" {
  # The fixture bundle is the one the stage uploads: SHA256SUMS lists every object.
  listed="$(sed 's/^[0-9a-f]\{64\}  //' "$(bundle_root)/SHA256SUMS" | LC_ALL=C sort)"
  found="$(cd "$(bundle_root)" && find . -type f ! -path ./SHA256SUMS -printf '%P\n' | LC_ALL=C sort)"
  [ "${listed}" = "${found}" ]
  [[ "${listed}" == *"lib/common.sh"* && "${listed}" == *"node.env"* ]]
  for script in node-start compute-node; do
    node "${script}"
    [ "$status" -eq 0 ]
  done
  [ -f "${PWB_HOME}/cluster/SHA256SUMS" ] && [ ! -e "${PWB_HOME}/cluster.new" ]
}

@test "bundle: a tampered lib file is refused before anything is installed" {
  printf '%s\n' "touch '${T}/pwned'" >>"$(bundle_root)/lib/common.sh"
  refused_everywhere "a file of the bundle does not match SHA256SUMS"
}

@test "bundle: a tampered node.env is refused before anything is installed" {
  sed -i "s|^HA_CONTROLLERS=.*|HA_CONTROLLERS=true|" "${NODE_ENV}"
  refused_everywhere "a file of the bundle does not match SHA256SUMS"
}

@test "bundle: a planted file SHA256SUMS does not list is refused" {
  printf '%s\n' "touch '${T}/pwned'" >"$(bundle_root)/lib/zz-extra.sh"
  refused_everywhere "the bundle holds files SHA256SUMS does not list"
  rm "$(bundle_root)/lib/zz-extra.sh"
  mkdir -p "$(bundle_root)/workbench/etc/rstudio/planted"
  printf 'auth-none=1\n' >"$(bundle_root)/workbench/etc/rstudio/planted/rserver.conf"
  refused_everywhere "the bundle holds files SHA256SUMS does not list"
}

@test "bundle: without SHA256SUMS nothing runs" {
  rm "$(bundle_root)/SHA256SUMS"
  refused_everywhere "the bundle has no SHA256SUMS"
}

@test "bundle: a refused bundle leaves the previous verified copy in place" {
  node compute-node
  [ "$status" -eq 0 ]
  before="$(cd "${PWB_HOME}/cluster" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
  printf '%s\n' "touch '${T}/pwned'" >>"$(bundle_root)/lib/common.sh"
  node compute-node
  [ "$status" -eq 1 ]
  [ "$(cd "${PWB_HOME}/cluster" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" = "${before}" ]
  [ ! -e "${T}/pwned" ]
}

@test "no script anywhere installs a cron entry" {
  run grep -rEln 'crontab|/etc/cron|cron\.d/|cron\.(daily|hourly)' \
    "${REPO_ROOT}/cluster" "${REPO_ROOT}/image" "${REPO_ROOT}/src/pwbcluster/templates"
  [ "$status" -eq 1 ]
}

@test "controller HA: head and login call the HA entry script with the shared settings" {
  set_env HA_CONTROLLERS true
  set_env SLURMCTLD_TIMEOUT 7
  printf '#!/usr/bin/env bash\nprintf "%%s\\n" "$*" >>"%s/ha-calls"\n' "${T}" \
    >"$(find "${FAKE_S3}" -name controller-ha.sh)"
  reseal ha/controller-ha.sh
  run_head
  [ "$status" -eq 0 ]
  run_login
  [ "$status" -eq 0 ]
  sums="--scaling-sums-uri s3://example-scripts-test/ha/scaling.sha256sums"
  [ "$(sed -n 1p "${T}/ha-calls")" = "--role head --shared-dir /opt/slurm/pwb-ha --slurmctld-timeout 7 ${sums}" ]
  [ "$(sed -n 2p "${T}/ha-calls")" = "--role login --shared-dir /opt/slurm/pwb-ha --slurmctld-timeout 7 ${sums}" ]
}

@test "container sessions: the head node builds each session image once, in the background" {
  set_env CONTAINER_SESSIONS true
  set_env CONTAINER_IMAGES "jammy noble"
  run_head
  [ "$status" -eq 0 ]
  [ "$(stub_calls systemd-run | grep -c 'apptainer build')" = 2 ]
  [[ "$(stub_calls systemd-run)" == *"docker://rstudio/r-session-complete:jammy-2026.09.0"* ]]
  printf 'sif' >"${T}/shared/containers/r-session-complete-jammy.sif"
  printf 'sif' >"${T}/shared/containers/r-session-complete-noble.sif"
  run_head
  [ "$status" -eq 0 ]
  [ "$(stub_calls systemd-run | grep -c 'apptainer build')" = 2 ]
  [ -z "$(stub_calls apptainer)" ]
}

@test "node.env: a key outside the allow-list (LD_PRELOAD, PATH) is refused before it is exported" {
  local key
  for key in LD_PRELOAD PATH BASH_ENV; do
    cp "${NODE_ENV}" "${T}/node.env.orig"
    printf '%s=/tmp/evil\n' "${key}" >>"${NODE_ENV}"
    # Sealed as if the stage had uploaded it: load_env's allow-list is the check here.
    reseal node.env
    run_head
    [ "$status" -ne 0 ]
    [[ "$output" == *"key ${key} is not an allowed node setting"* ]]
    [ ! -e "${T}/shared/etc/rstudio/rserver.conf" ]
    cp "${T}/node.env.orig" "${NODE_ENV}"
  done
}

@test "node.env: a value with a control character is refused" {
  printf 'DEPLOYMENT=ex\rample\n' >>"${NODE_ENV}"
  reseal node.env
  run_head
  [ "$status" -ne 0 ]
  [[ "$output" == *"DEPLOYMENT has a control character"* ]]
}

@test "load_env accepts every allow-listed key and exports it literally" {
  # shellcheck source=/dev/null
  source "${REPO_ROOT}/cluster/lib/common.sh"
  printf 'REGION=eu-west-1\nCONTAINER_IMAGES=jammy noble\n' >"${T}/ok.env"
  load_env "${T}/ok.env"
  [ "${REGION}" = "eu-west-1" ]
  [ "${CONTAINER_IMAGES}" = "jammy noble" ]
  node_env_key_allowed LICENSE_SECRET_ARN
  run node_env_key_allowed LD_PRELOAD
  [ "$status" -eq 1 ]
}

@test "container sessions: a session image pinned by digest is pulled by that digest" {
  digest="sha256:$(printf 'ab%.0s' {1..32})"
  set_env CONTAINER_SESSIONS true
  set_env CONTAINER_IMAGES "jammy noble"
  set_env CONTAINER_DIGESTS "noble@${digest}"
  run_head
  [ "$status" -eq 0 ]
  [[ "$(stub_calls systemd-run)" == *"docker://rstudio/r-session-complete@${digest}"* ]]
  [[ "$(stub_calls systemd-run)" == *"docker://rstudio/r-session-complete:jammy-2026.09.0"* ]]
  [[ "$(stub_calls systemd-run)" != *"noble-2026.09.0"* ]]
}
