#!/usr/bin/env bash
# The README's first command: installs and builds what it needs, then runs the enclave's
# services on embedded defaults (policies/ and a state directory under var/demo) until Ctrl-C.
# Services: enclave-auditd (the tamper-evident audit trail), enclave-sessiond (compartments,
# desktops, one-time tickets, the PAM login), enclave-gatewayd (the kiosks' login API and the
# channel-filtering RDP relay) and enclave-exportd (export requests, steward review, releases
# and their one-time download links); the kiosk's login client enclave-kiosk; tools:
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

# The local CA, and the gateway's certificate from it: the kiosks' kits trust the CA and pin
# this certificate, for the login API and the RDP relay alike. (A demo state directory from an
# earlier version has a self-signed one: --replace it, once.)
if [[ ! -f $ENCLAVE_STATE_DIR/keys/ca/ca.crt ]]; then
  enclavectl ca init >/dev/null
fi
if [[ ! -f $ENCLAVE_STATE_DIR/.demo-gateway-cert ]]; then
  enclavectl gateway cert --name 127.0.0.1 --replace >/dev/null
  touch "$ENCLAVE_STATE_DIR/.demo-gateway-cert"
fi

# The demo analyst's password is checked by pam_unix, as a center's would be by pam_unix or
# pam_sss: a system account without a home or a shell (/usr/sbin/nologin), its password made
# here once and kept in the state directory (mode 0600).
"$root/scripts/demo-account.sh"

pids=()
stop_all() {
  # Front door first, the audit trail last (it seals what the others wrote).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT INT TERM
# A socket file left by a daemon that did not stop cleanly would look like a ready daemon:
# removed first, unless something still answers on it.
clear_stale_socket() {  # clear_stale_socket PATH
  [[ -S $1 ]] || return 0
  if python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \
    "$1" 2>/dev/null; then
    echo "something is already serving at $1 (is ./scripts/run.sh running?)" >&2
    exit 1
  fi
  rm -f "$1"
}
start() {  # start NAME SOCKET
  clear_stale_socket "$ENCLAVE_STATE_DIR/run/$2"
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
start enclave-exportd exportd.sock

seed=$ENCLAVE_STATE_DIR/.demo-seeded
if [[ ! -f $seed ]]; then
  "$root/scripts/demo-events.sh" && touch "$seed"
fi

# The login demo's registry (once): the analyst, a steward, a security room whose "VPN pool"
# is loopback, its kitted kiosk, a project granting demo-shadow.
if [[ ! -f $ENCLAVE_STATE_DIR/.demo-login-seeded ]]; then
  "$root/scripts/demo-registry.sh" && touch "$ENCLAVE_STATE_DIR/.demo-login-seeded"
fi

# A demo project's release ledger holds one released table, so the differencing audit has
# something to compare with.
if [[ ! -f $ENCLAVE_STATE_DIR/.demo-ledger-seeded ]]; then
  enclave-exitcheck ledger record --project P-2026-014 --request demo-release-1 \
    docs/examples/exitcontrol/outpatients_by_region.csv >/dev/null &&
    touch "$ENCLAVE_STATE_DIR/.demo-ledger-seeded"
fi

listen_of() {  # listen_of TABLE: its listen address in policies/gateway.toml
  sed -n "/^\\[$1\\]/,/^\\[/ s/^listen = \"\\([^\"]*\\)\".*/\\1/p" "$ENCLAVE_POLICIES/gateway.toml"
}
cat <<MSG

The enclave is running on embedded defaults (state in $ENCLAVE_STATE_DIR).
Services (sockets in $ENCLAVE_STATE_DIR/run):
  enclave-auditd    the audit trail
  enclave-sessiond  the registry, the PAM login, sessions, one-time tickets, desktops
  enclave-gatewayd  the kiosks' login API on $(listen_of gateway.login), the RDP relay on $(listen_of gateway)
  enclave-exportd   export requests and their review; release downloads on https://$(sed -n '/^\[exportd.download\]/,/^\[/ s/^listen = "\([^"]*\)".*/\1/p' "$ENCLAVE_POLICIES/exports.toml")

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

Log in at the demo kiosk (see docs/demo.md): ID, password and fingerprint, as at a security room.
libfprint's virtual reader stands in for the kiosk's; the script plays the finger.
  scripts/demo-login.sh enrol              # the steward approves, demo-analyst enrols a finger
  scripts/demo-login.sh                    # log in as demo-analyst (password: $(cat "$ENCLAVE_STATE_DIR/demo/demo-analyst.password" 2>/dev/null || echo "see scripts/demo-account.sh"))
  scripts/demo-login.sh connect            # log in and open the desktop with the ticket
  FINGER=someone-else scripts/demo-login.sh   # the wrong finger: refused, audited
  enclave-audit query --type login.failed

A desktop through the gateway (see docs/demo.md): a real xfreerdp asks for clipboard and a
drive, the gateway refuses both, the analyst sees the desktop (screenshot), the audit shows it:
  scripts/demo-rdp.sh                      # a freerdp-shadow-cli desktop; demo-xrdp: xrdp (root)
  enclavectl ticket issue --user alice --device kiosk-07 --source 127.0.0.1 --compartment demo-shadow
  enclavectl session list
  enclavectl session end SESSION

Results leaving the enclave (see docs/demo.md): the analyst asks from the session's outbox,
the engine checks, the steward decides, the organisation downloads once over TLS:
  scripts/demo-export.sh                   # request, safe version, approval, link, download
  enclavectl export queue --as demo-steward
  enclavectl export releases

Ctrl-C stops the services (the audit daemon seals its last entries first).
MSG
wait "${pids[0]}"
