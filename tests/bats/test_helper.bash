# Shared helpers for the bats tests (load with `load test_helper`).
# Commands are stubbed on PATH in $BATS_TEST_TMPDIR/bin; each call is recorded, one line
# of arguments per call, in $BATS_TEST_TMPDIR/calls/<command>.

REPO_ROOT="$(cd "$(dirname "${BATS_TEST_FILENAME}")/../.." && pwd)"
export REPO_ROOT

# Puts the stub directory first on PATH. Call from setup().
stub_setup() {
  mkdir -p "${BATS_TEST_TMPDIR}/bin" "${BATS_TEST_TMPDIR}/calls"
  PATH="${BATS_TEST_TMPDIR}/bin:${PATH}"
  export PATH
}

# stub NAME [BODY]: a fake command that records its arguments, then runs BODY (bash).
stub() {
  local name="$1" body="${2:-exit 0}"
  cat >"${BATS_TEST_TMPDIR}/bin/${name}" <<STUB
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"${BATS_TEST_TMPDIR}/calls/${name}"
${body}
STUB
  chmod +x "${BATS_TEST_TMPDIR}/bin/${name}"
}

# stub_calls NAME: what the stub was called with (empty when never called).
stub_calls() {
  cat "${BATS_TEST_TMPDIR}/calls/$1" 2>/dev/null || true
}
