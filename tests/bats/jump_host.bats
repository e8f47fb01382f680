#!/usr/bin/env bats
# The jump host's pwb-users install step (src/pwbcluster/templates/services/jump-host-user-data.sh,
# install_pwb_users) with aws, python3 and the venv's python stubbed: what it downloads and
# installs, that a re-run with the same wheel does nothing, and bounded retries.

load test_helper

SCRIPT="${REPO_ROOT}/src/pwbcluster/templates/services/jump-host-user-data.sh"

setup() {
  stub_setup
  T="${BATS_TEST_TMPDIR}"
  export PWB_USERS_VENV="${T}/opt/pwb-users" PWB_USERS_LINK="${T}/usr/local/bin/pwb-users"
  mkdir -p "${T}/usr/local/bin"
  export FAKE_WHEEL="${T}/pwbcluster-0.1.0-py3-none-any.whl"
  printf 'wheel one\n' >"${FAKE_WHEEL}"
  # aws s3 cp URI DEST: copies the fake wheel to DEST (the last argument).
  # shellcheck disable=SC2016 # stub bodies expand when the stub runs
  stub aws 'cp "${FAKE_WHEEL}" "${@: -1}"'
  stub sleep
  # python3 -m venv DIR: a venv whose python records pip calls; installing the wheel
  # creates the console script.
  # shellcheck disable=SC2016
  stub python3 'venv="${@: -1}"; mkdir -p "${venv}/bin"
cat >"${venv}/bin/python" <<PY
#!/usr/bin/env bash
printf "%s\n" "\$*" >>"'"${T}"'/calls/venv-python"
if [[ "\$*" == *--no-deps* ]]; then
  printf "#!/usr/bin/env bash\nexit 0\n" >"${venv}/bin/pwb-users"
  chmod +x "${venv}/bin/pwb-users"
fi
PY
chmod +x "${venv}/bin/python"'
  # The script ends with `[[ BASH_SOURCE == $0 ]] && main`, false when sourced.
  # shellcheck source=src/pwbcluster/templates/services/jump-host-user-data.sh
  source "${SCRIPT}" || true
  REGION=eu-west-1
  TOOL_WHEEL_URI="s3://example-scripts/jump/pwbcluster-0.1.0-py3-none-any.whl"
  TOOL_REQUIREMENTS="ldap3==2.9.1 boto3==1.44.8"
}

@test "installs the wheel with --no-deps beside the pinned runtime and links pwb-users" {
  run install_pwb_users
  [ "$status" -eq 0 ]
  [[ "$(stub_calls aws)" == *"s3 cp"*"--region eu-west-1"*"${TOOL_WHEEL_URI}"* ]]
  [[ "$(stub_calls python3)" == "-m venv ${PWB_USERS_VENV}" ]]
  run stub_calls venv-python
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == *"-m pip"*"install ldap3==2.9.1 boto3==1.44.8" ]]
  [[ "${lines[1]}" == *"install --no-deps --force-reinstall "*"/pwbcluster-0.1.0-py3-none-any.whl" ]]
  [ "$(readlink "${PWB_USERS_LINK}")" = "${PWB_USERS_VENV}/bin/pwb-users" ]
}

@test "a re-run with the same wheel installs nothing; a new wheel is installed" {
  run install_pwb_users
  [ "$status" -eq 0 ]
  run install_pwb_users
  [ "$status" -eq 0 ]
  [[ "$output" == *"pwb-users is up to date"* ]]
  [ "$(stub_calls venv-python | wc -l)" -eq 2 ]
  printf 'wheel two\n' >"${FAKE_WHEEL}"
  run install_pwb_users
  [ "$status" -eq 0 ]
  [[ "$output" == *"installing pwb-users"* ]]
  [ "$(stub_calls venv-python | wc -l)" -eq 4 ]
  [ "$(stub_calls python3 | wc -l)" -eq 1 ]
}

@test "a download that keeps failing stops after five tries with a clear error" {
  stub aws 'exit 1'
  run install_pwb_users
  [ "$status" -eq 1 ]
  [[ "$output" == *"cannot download ${TOOL_WHEEL_URI}"* ]]
  [ "$(stub_calls aws | wc -l)" -eq 5 ]
  [ ! -e "${PWB_USERS_LINK}" ]
}

@test "a failed install leaves no stamp, so the next run tries again" {
  stub python3 'exit 1'
  run install_pwb_users
  [ "$status" -eq 1 ]
  [[ "$output" == *"cannot create ${PWB_USERS_VENV}"* ]]
  [ ! -e "${PWB_USERS_VENV}/.pwbcluster-installed" ]
  [ ! -e "${PWB_USERS_LINK}" ]
}

@test "no wheel named: a warning, nothing downloaded" {
  TOOL_WHEEL_URI=""
  run install_pwb_users
  [ "$status" -eq 0 ]
  [[ "$output" == *"pwb-users is not installed"* ]]
  [ -z "$(stub_calls aws)" ]
}
