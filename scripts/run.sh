#!/usr/bin/env bash
# The README's first command: installs and builds what it needs, then runs the enclave's
# services on embedded defaults (policies/ and a state directory under var/demo) until Ctrl-C.
# Services: enclave-auditd (the tamper-evident audit trail), enclave-sessiond (compartments,
# desktops, one-time tickets) and enclave-gatewayd (the channel-filtering RDP relay); tools:
# enclavectl, enclave-audit and enclave-exitcheck (exit control) with a demo release ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
./scripts/bootstrap.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DENCLAVE_TESTS=OFF -DENCLAVE_BENCH=OFF >/dev/null
cmake --build build/release

export ENCLAVE_POLICIES=${ENCLAVE_POLICIES:-$root/policies}
export ENCLAVE_STATE_DIR=${ENCLAVE_STATE_DIR:-$root/var/demo}
export PATH=$root/build/release/bin:$PATH
mkdir -p "$ENCLAVE_STATE_DIR"

if [[ ! -f $ENCLAVE_STATE_DIR/keys/audit-signing.key ]]; then
  enclave-auditd keygen
fi

if [[ ! -f $ENCLAVE_STATE_DIR/keys/gateway.key ]]; then
  enclave-gatewayd keygen >/dev/null
fi

pids=()
stop_all() {
  # Front door first, the audit trail last (it seals what the others wrote).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT INT TERM
start() {  # start NAME SOCKET
  "$1" run &
  pids+=($!)
  for _ in $(seq 100); do
    [[ -S $ENCLAVE_STATE_DIR/run/$2 ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "$1 did not start" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1 did not open $2" >&2
  exit 1
}
start enclave-auditd auditd.sock
start enclave-sessiond sessiond.sock
start enclave-gatewayd gatewayd.sock

seed=$ENCLAVE_STATE_DIR/.demo-seeded
if [[ ! -f $seed ]]; then
  "$root/scripts/demo-events.sh" && touch "$seed"
fi

# A demo project's release ledger holds one released table, so the differencing audit has
# something to compare with.
if [[ ! -f $ENCLAVE_STATE_DIR/.demo-ledger-seeded ]]; then
  enclave-exitcheck ledger record --project P-2026-014 --request demo-release-1 \
    docs/examples/exitcontrol/outpatients_by_region.csv >/dev/null &&
    touch "$ENCLAVE_STATE_DIR/.demo-ledger-seeded"
fi

cat <<MSG

The enclave is running on embedded defaults (state in $ENCLAVE_STATE_DIR).
Services: enclave-auditd (audit trail), enclave-sessiond (sessions, tickets, desktops) and
enclave-gatewayd (RDP relay on $(sed -n 's/^listen = "\([^"]*\)".*/\1/p' policies/gateway.toml)), sockets in $ENCLAVE_STATE_DIR/run

In another terminal:
  source scripts/demo-env.sh
  enclave-audit verify                                  # is the log exactly as sealed?
  enclave-audit query --user alice                      # what did alice do?
  enclave-audit timeline demo-s1                        # one session, minute by minute
  enclave-audit report logins-per-site --month $(date -u +%Y-%m)
  enclave-audit export --out /tmp/alice.jsonl --user alice && enclave-audit verify-export /tmp/alice.jsonl
  enclavectl audit status

Exit control (tables in docs/examples/exitcontrol; see docs/steward-guide.md):
  enclave-exitcheck check docs/examples/exitcontrol/outpatients_by_region_age.csv      # 4 cells under 10
  enclave-exitcheck suggest docs/examples/exitcontrol/outpatients_by_region_age.csv --out /tmp/exit
  enclave-exitcheck audit /tmp/exit/safe/outpatients_by_region_age.csv                  # hidden cells stay hidden
  enclave-exitcheck check --project P-2026-014 docs/examples/exitcontrol/outpatients_adults_by_region.csv

A desktop through the gateway (see docs/demo.md): a real xfreerdp asks for clipboard and a
drive, the gateway refuses both, the analyst sees the desktop (screenshot), the audit shows it:
  scripts/demo-rdp.sh                      # a freerdp-shadow-cli desktop; demo-xrdp: xrdp (root)
  enclavectl ticket issue --user alice --device kiosk-07 --source 127.0.0.1 --compartment demo-shadow
  enclavectl session list
  enclavectl session end SESSION

Ctrl-C stops the services (the audit daemon seals its last entries first).
MSG
wait "${pids[0]}"
