#!/usr/bin/env bash
# The login demo's registry, made with enclavectl as an operator would (run once by
# scripts/run.sh while the services run): demo-analyst (analyst) and demo-steward (steward);
# demo-room, a security room whose "VPN pool" is loopback, approved for a year; its kiosk
# demo-kiosk, kitted into $ENCLAVE_STATE_DIR/demo/kiosk-kit; demo-project, granting
# demo-shadow to demo-analyst for a year.
set -euo pipefail
ctl() { enclavectl "$@" >/dev/null; }
today=$(date -u +%F)
in_a_year=$(date -u -d '+1 year' +%F)
ctl user add demo-analyst --name "Demo Analyst" --role analyst
ctl user add demo-steward --name "Demo Steward" --role steward
ctl site add demo-room --name "Demo security room" --ike-id demo-room.sites.enclave \
  --pool 127.0.0.0/8
ctl site approve demo-room --until "$in_a_year"
ctl device kit demo-room --id demo-kiosk --out "$ENCLAVE_STATE_DIR/demo/kiosk-kit"
ctl project add demo-project --title "Demo: outpatient claims" --from "$today" --until "$in_a_year"
ctl project member add demo-project demo-analyst
ctl project grant demo-project demo-shadow
