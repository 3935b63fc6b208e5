#!/usr/bin/env bash
# The analyst at the demo kiosk (./scripts/run.sh must be running): enclave-kiosk against the
# gateway's login API with the demo kiosk's kit, libfprint's virtual_device reader standing in
# for the kiosk's fingerprint reader, and the finger played by this script on the reader's
# socket (FINGER names it; the demo analyst's own is the default).
#   scripts/demo-login.sh enrol      the steward approves (enclavectl), the kiosk enrols a finger
#   scripts/demo-login.sh [login]    ID, password, finger; prints the xfreerdp command
#   scripts/demo-login.sh connect    the same, then opens the desktop with the ticket
#                                    (scripts/demo-rdp.sh: a screenshot, the session's audit)
#   FINGER=someone-else scripts/demo-login.sh    a finger that is not the enrolled one
set -euo pipefail
what=${1:-login}
case $what in
  enrol | login | connect) ;;
  *) echo "usage: $0 [enrol|login|connect]" >&2; exit 2 ;;
esac
source "$(dirname "$0")/demo-env.sh"
state=$ENCLAVE_STATE_DIR
[[ -S $state/run/gatewayd.sock ]] || { echo "start ./scripts/run.sh first" >&2; exit 1; }
user=demo-analyst
finger=${FINGER:-demo-analyst-right-index}
login_api=$(sed -n '/^\[gateway.login\]/,/^\[/ s/^listen = "\([^"]*\)".*/\1/p' \
  "$ENCLAVE_POLICIES/gateway.toml")
work=$(mktemp -d)
trap 'kill ${finger_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
export FP_VIRTUAL_DEVICE=$work/reader.sock

# play_finger TIMES: puts the finger on the reader TIMES times (the reader queues each scan
# until it waits for a finger).
play_finger() {
  python3 - "$FP_VIRTUAL_DEVICE" "$finger" "$1" <<'PY' &
import os, socket, sys, time
path, finger, times = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(600):
    if os.path.exists(path):
        break
    time.sleep(0.1)
try:
    for _ in range(times):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(f"SCAN {finger}".encode())
        s.recv(1)  # the reader closes the connection once it has the scan
        s.close()
except OSError:
    pass  # the kiosk closed its reader: the login ended before the finger was wanted
PY
  finger_pid=$!
}

kiosk=(--gateway "$login_api" --kit "$state/demo/kiosk-kit" --user "$user"
       --driver virtual_device)
if [[ $what == enrol ]]; then
  # The steward, standing at the kiosk, approves; the approval is good for enrolment_window_s.
  enclavectl enrolment approve "$user" demo-kiosk --by demo-steward >/dev/null
  play_finger 5  # virtual_device takes five scans to enrol
  enclave-kiosk enrol "${kiosk[@]}"
  exit
fi
play_finger 1
echo "password: $(cat "$state/demo/$user.password" 2>/dev/null || echo '(yours)')" >&2
command=$(enclave-kiosk login "${kiosk[@]}")
echo "$command"
if [[ $what == connect ]]; then
  ticket=$(sed -n 's|.*/pcb:\([0-9a-f]*\).*|\1|p' <<<"$command")
  ENCLAVE_DEMO_TICKET=$ticket "$(dirname "$0")/demo-rdp.sh"
fi
