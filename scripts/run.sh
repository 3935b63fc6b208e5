#!/usr/bin/env bash
# The README's first command: installs and builds what it needs, then runs the enclave's
# services on embedded defaults (policies/ and a state directory under var/demo) until Ctrl-C.
# Services so far: enclave-auditd, the tamper-evident audit trail; tools: enclave-audit and
# enclave-exitcheck (exit control) with a demo release ledger.
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

enclave-auditd run &
auditd=$!
trap 'kill -TERM $auditd 2>/dev/null; wait $auditd' EXIT INT TERM
for _ in $(seq 100); do
  [[ -S $ENCLAVE_STATE_DIR/run/auditd.sock ]] && break
  kill -0 $auditd 2>/dev/null || { echo "enclave-auditd did not start" >&2; exit 1; }
  sleep 0.1
done

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
Services: enclave-auditd (audit trail) on $ENCLAVE_STATE_DIR/run/auditd.sock

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

Ctrl-C stops the services (the audit daemon seals its last entries first).
MSG
wait $auditd
