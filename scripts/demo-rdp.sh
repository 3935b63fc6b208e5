#!/usr/bin/env bash
# Connects a real xfreerdp through the running demo gateway (./scripts/run.sh must be running):
# issues a one-time ticket as an operator would, starts xfreerdp with the ticket and the
# gateway's pinned certificate, asking for clipboard and a shared drive (which the gateway
# refuses), saves a screenshot of what the analyst sees, prints the session's audit trail,
# and ends the session.
#   scripts/demo-rdp.sh [COMPARTMENT]     demo-shadow (default) or demo-xrdp (needs root)
#   ENCLAVE_DEMO_TICKET=T scripts/demo-rdp.sh   a ticket a login got (scripts/demo-login.sh)
# With $DISPLAY set, xfreerdp opens a window there and stays until you close it; without it,
# it runs on a private Xvfb and the screenshot goes to /tmp/enclave-demo-rdp.png.
set -euo pipefail
compartment=${1:-demo-shadow}
source "$(dirname "$0")/demo-env.sh"
state=$ENCLAVE_STATE_DIR
[[ -S $state/run/gatewayd.sock ]] || { echo "start ./scripts/run.sh first" >&2; exit 1; }

listen=$(sed -n '/^\[gateway\]/,/^\[/ s/^listen = "\([^"]*\)".*/\1/p' "$ENCLAVE_POLICIES/gateway.toml")
# xfreerdp 2.x pins by the certificate's SHA-256 in colon-separated hex.
fingerprint=$(openssl x509 -in "$state/keys/gateway.crt" -noout -fingerprint -sha256 | cut -d= -f2)
if [[ -n ${ENCLAVE_DEMO_TICKET:-} ]]; then
  # From scripts/demo-login.sh: the ticket the kiosk's login got; its session is the analyst's
  # newest one not yet connected.
  ticket=$ENCLAVE_DEMO_TICKET
  session=$(enclavectl --json session list | python3 -c 'import json,sys
s=[x for x in json.load(sys.stdin)["sessions"] if x["user"]=="demo-analyst" and x["state"]=="issued"]
print(sorted(s, key=lambda x: x["started_at"])[-1]["session_id"] if s else "")')
else
  issued=$(enclavectl ticket issue --user demo-analyst --device kiosk-demo --source 127.0.0.1 \
    --compartment "$compartment" --json)
  ticket=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ticket"])' <<<"$issued")
  session=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])' <<<"$issued")
  echo "ticket issued for session $session (single use, about 60 s)"
fi

share=$(mktemp -d)
args=(/v:"$listen" /pcb:"$ticket" /cert:fingerprint:sha256:"$fingerprint" /sec:tls
      /size:1024x768 +clipboard /drive:share,"$share" /log-level:WARN)
if [[ -n ${DISPLAY:-} ]]; then
  echo "xfreerdp ${args[*]/$ticket/TICKET}"
  xfreerdp "${args[@]}" || true
else
  xvfb=$(mktemp -d)
  Xvfb -displayfd 3 -screen 0 1280x900x24 -nolisten tcp 3>"$xvfb/display" >/dev/null 2>&1 &
  xvfb_pid=$!
  trap 'kill $xvfb_pid ${client:-} 2>/dev/null || true; rm -rf "$xvfb" "$share"' EXIT
  for _ in $(seq 50); do [[ -s $xvfb/display ]] && break; sleep 0.1; done
  export DISPLAY=:$(cat "$xvfb/display")
  xfreerdp "${args[@]}" >/dev/null 2>&1 &
  client=$!
  sleep 6
  xwd -root -silent | convert xwd:- png:/tmp/enclave-demo-rdp.png
  echo "what the analyst sees: /tmp/enclave-demo-rdp.png"
  enclavectl session list
  enclavectl session end "$session" --reason "demo over"
  wait $client 2>/dev/null || true
  sleep 1
fi
echo
echo "The session in the audit trail:"
enclave-audit timeline "$session"
