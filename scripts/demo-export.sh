#!/usr/bin/env bash
# Results leaving the enclave, as in a real review (./scripts/run.sh must be running):
#   1. a session for demo-analyst (its outbox and export token, made by enclave-sessiond);
#   2. inside the desktop, the analyst puts two tables in the outbox and asks to export them
#      (enclave-export): one passes, one has cells under 10 and gets a safe version;
#   3. the analyst accepts the safe version; demo-steward reviews the queue, looks at the
#      report beside the file, and approves each file (enclavectl export);
#   4. the release is sealed; the steward makes a one-time download link; the requester's
#      organisation downloads it with curl over TLS and checks the signed manifest;
#   5. the same link again: refused (410), and the audit trail says why.
# STEP=request stops after step 2 (to try the steward's side by hand).
set -euo pipefail
source "$(dirname "$0")/demo-env.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
state=$ENCLAVE_STATE_DIR
[[ -S $state/run/exportd.sock ]] || { echo "start ./scripts/run.sh first" >&2; exit 1; }
examples=$root/docs/examples/exitcontrol
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The steward reviews the project's requests: a member of it (once).
enclavectl project member add demo-project demo-steward >/dev/null 2>&1 || true

say "1. a session for demo-analyst in demo-shadow (enclavectl ticket issue)"
session=$(enclavectl ticket issue --user demo-analyst --device demo-kiosk --source 127.0.0.1 \
  --compartment demo-shadow --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
export ENCLAVE_OUTBOX=$state/exitcontrol/outbox/$session
echo "session $session, outbox $ENCLAVE_OUTBOX"

say "2. inside the desktop: two tables into the outbox, then enclave-export request"
for t in outpatients_by_region.csv outpatients_by_region_age.csv; do
  cp "$examples/$t" "$examples/$t.meta.toml" "$ENCLAVE_OUTBOX/"
done
out=$(enclave-export request outpatients_by_region.csv outpatients_by_region_age.csv \
  --justification "Tables 1 and 2 of the outpatient paper" --wait)
echo "$out"
request=$(grep -o 'R-[0-9]\+' <<<"$out" | head -1)
[[ ${STEP:-} == request ]] && { echo; echo "next: enclave-export status $request"; exit 0; }

say "3. the analyst accepts the safe version; demo-steward reviews and approves"
enclave-export accept-safe "$request" outpatients_by_region_age.csv
enclavectl export queue --as demo-steward
enclavectl export show "$request" --as demo-steward | head -60
enclavectl export approve "$request" 0 --as demo-steward
enclavectl export approve "$request" 1 --as demo-steward --comment "the safe version hides every cell under 10"
for _ in $(seq 100); do
  enclave-export status "$request" --json | grep -q '"state": "released"' && break
  sleep 0.2
done
enclave-export status "$request"

say "4. a one-time link; the organisation downloads and verifies the bundle"
url=$(enclavectl export link "$request" --as demo-steward --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
echo "link: ${url%/*}/…(shown once)"
bundle=$(mktemp -d)/release.tar
curl -sS --fail --cacert "$state/keys/ca/ca.crt" -o "$bundle" "$url"
tar -tvf "$bundle"
enclave-exitcheck release verify "$bundle" --public-key "$state/keys/export-signing.pub"

say "5. the same link again"
code=$(curl -sS --cacert "$state/keys/ca/ca.crt" -o /dev/null -w '%{http_code}' "$url" || true)
echo "HTTP $code (the link was used)"
enclave-audit query --type export.download.refused | tail -3
echo
echo "The whole story in the audit trail: enclave-audit query --type export.requested"
echo "  (and export.checked, export.choice, export.decision, export.released, export.link,"
echo "   export.download.started, export.downloaded, export.download.refused)"
