#!/usr/bin/env bash
# Appends a small, plainly labelled demo history (details.demo = true) through the running
# audit daemon, so a newcomer has logins, sessions and exports to query. Until the login and
# session services exist, these are written by enclavectl and recorded as the operator's.
set -euo pipefail
ev() { enclavectl audit append "$@" >/dev/null; }
for site in tohoku-room-1 osaka-room-2; do
  ev --type site.registered --actor-kind service --actor enclave-demo --object "$site" \
     --details '{"demo":true}'
done
ev --type login.attempt --actor alice --site tohoku-room-1 --device tc-017 --session demo-s1 \
   --outcome success --details '{"demo":true,"factors":["password","fingerprint"]}'
ev --type session.start --actor alice --site tohoku-room-1 --device tc-017 --session demo-s1 \
   --outcome success --object compartment/ndb-shared --details '{"demo":true}'
ev --type channel.refused --actor alice --site tohoku-room-1 --session demo-s1 \
   --outcome refused --object cliprdr --details '{"demo":true,"reason":"clipboard is off in tier shared"}'
ev --type export.request --actor alice --session demo-s1 --outcome info \
   --object outbox/table1.csv --details '{"demo":true,"justification":"Table 1 for the paper"}'
ev --type login.attempt --actor bob --site osaka-room-2 --device tc-101 --session "" \
   --outcome failure --details '{"demo":true,"reason":"fingerprint did not match"}'
ev --type login.attempt --actor bob --site osaka-room-2 --device tc-101 --session demo-s2 \
   --outcome success --details '{"demo":true,"factors":["password","fingerprint"]}'
ev --type session.end --actor alice --site tohoku-room-1 --device tc-017 --session demo-s1 \
   --outcome success --details '{"demo":true,"bytes":{"display":18234112,"input":88312}}'
enclavectl audit checkpoint >/dev/null
echo "demo history appended and sealed"
