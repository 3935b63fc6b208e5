#!/usr/bin/env bash
# On-demand benchmarks (never in CI): builds a Release tree without sanitizers, then measures
# every figure docs/benchmarks.md records. Run it on a quiet machine.
#   ./scripts/bench.sh              everything (about 15 minutes, plus 1 minute the first time to
#                                   build the 1,000,000-event fixture under $TMPDIR)
#   ./scripts/bench.sh audit        the audit trail only
#   ./scripts/bench.sh exitcontrol  the exit-control engine only (about 4 minutes)
#   ./scripts/bench.sh relay        the RDP relay against HAProxy only (about 4 minutes)
#   ./scripts/bench.sh relay-throughput [ROUNDS]
#                                   the relay's throughput part only, ROUNDS rounds (default 8)
#   ./scripts/bench.sh login [ROUNDS]
#                                   the login path only: 50 kiosks at once, ROUNDS rounds
#                                   (default 10), then refusals at accept (about 2 minutes)
#   ./scripts/bench.sh export       the export service only: a 10,000-request queue against
#                                   sqlite3, 100 MB submissions against cp + sha256sum (about
#                                   2 minutes)
# BENCH_BUILD_DIR names another build directory (default build/bench).
set -euo pipefail
what=${1:-all}
case $what in
  all | audit | exitcontrol | relay | relay-throughput | login | export) ;;
  *) echo "usage: $0 [all|audit|exitcontrol|relay|relay-throughput [ROUNDS]|login [ROUNDS]|export]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
build=${BENCH_BUILD_DIR:-build/bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DENCLAVE_TESTS=OFF \
  -DENCLAVE_BENCH=ON >/dev/null
cmake --build "$build"
bin=$build/bin

repeat=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
if [[ $what == all || $what == exitcontrol ]]; then
  echo "== Exit control: primary checks on a 1,030,301-cell table (target 1 s)"
  "$bin/exitcontrol_primary_bench" "${repeat[@]}"
  echo "== Exit control: k-anonymity, 1.2M rows x 9 quasi-identifiers (target 1 s; ARX Flash 1.38 s)"
  "$bin/exitcontrol_kanon_bench" "${repeat[@]}"
  echo "== Exit control: secondary suppression + attacker audit, 25,000-cell 3-D table (target 60 s)"
  "$bin/exitcontrol_lp_bench"
  echo "== Exit control: re-audit against 100 earlier releases (target 10 s)"
  "$bin/exitcontrol_ledger_bench"
fi

# The service benchmarks run in subshells that set `work` (a scratch directory) and `pids` (what
# they started, in order), and `trap stop_all EXIT`.
stop_all() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
started() {  # started PATH: waits for a socket or file the last started process makes
  for _ in $(seq 100); do
    [[ -e $1 ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "process ${pids[-1]} exited before $1" >&2; exit 1; }
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  exit 1
}
alive() {  # alive PID...: a benchmark's figures count only if its processes lived to the end
  for p in "$@"; do kill -0 "$p" || { echo "process $p died during the benchmark" >&2; exit 1; }; done
}
warnings() {  # warnings NAME...: what each enclave-NAME logged ($work/NAME.log), most frequent first
  for log in "$@"; do
    if [[ -s $work/$log.log ]]; then
      echo "enclave-$log warnings (count, message):"
      sed 's/^[^ ]* [^ ]* //' "$work/$log.log" | sort | uniq -c | sort -rn | head -5
    fi
  done
}

# ---- The RDP relay: enclave-gatewayd against HAProxy doing the same work (TLS terminated from
# the client, TLS again to the desktop, one thread), both pinned to CPU 0; the load tool (clients
# and the synthetic desktop host) on CPU 1. About 4 minutes. Figures: docs/benchmarks.md.
relay_bench() (
  relay_cpu=0 load_cpu=1
  work=$(mktemp -d)
  pids=()
  trap stop_all EXIT
  load=(taskset -c "$load_cpu" "$bin/relay_load")
  mkdir -p "$work/policies" "$work/state" "$work/results"
  export ENCLAVE_POLICIES=$work/policies ENCLAVE_STATE_DIR=$work/state
  run=$work/state/run
  results=$work/results

  # The synthetic desktop host: six RDP ports (sessions.toml caps a static host at 1,000
  # sessions) and one TLS port for HAProxy's backend and the direct baseline.
  "${load[@]}" sink --dir "$work/sink" --rdp-ports 6 --expect-user bench >"$work/sink.out" &
  pids+=($!)
  started "$work/sink/sink.env"
  # shellcheck source=/dev/null
  source "$work/sink/sink.env"  # pin, tls_port, rdp_ports
  : "${pin:?}" "${tls_port:?}" "${rdp_ports:?}"
  read -r gw_port ha_port < <("$bin/relay_load" free-ports 2 | paste -sd' ')

  cp policies/audit.toml "$work/policies/"
  cp -r policies/exitcontrol "$work/policies/"  # sessiond checks the tiers' export profiles
  sed -e "s|^listen = .*|listen = \"127.0.0.1:$gw_port\"|" -e "s|^threads = .*|threads = 1|" \
    policies/gateway.toml >"$work/policies/gateway.toml"
  printf 'user = "bench"\npassword = "bench-password"\ndomain = "BENCH"\n' >"$work/credentials.toml"
  chmod 600 "$work/credentials.toml"
  cat >"$work/policies/sessions.toml" <<TOML
[sessiond]
socket = "run/sessiond.sock"
database = "sessionmgr/sessions.db"
audit_socket = "run/auditd.sock"
gateway_socket = "run/gatewayd.sock"
gateway_address = "127.0.0.1:$gw_port"
ticket_ttl_s = 600
health_check_s = 10

[tiers.bench]
description = "relay benchmark"
static_channels = ["drdynvc"]
dynamic_channels = ["Microsoft::Windows::RDS::Graphics"]
idle_timeout_s = 3600
max_session_s = 28800
grace_s = 0
max_sessions_per_compartment = 20000
max_sessions_per_user = 1

[compartments.bench]
description = "the synthetic desktop host of scripts/bench.sh"
tier = "bench"
TOML
  for port in $rdp_ports; do
    cat >>"$work/policies/sessions.toml" <<TOML

[[compartments.bench.hosts]]
host = "127.0.0.1"
port = $port
pin_sha256 = "$pin"
capacity = 1000
credentials = "fixed"
credentials_file = "$work/credentials.toml"
TOML
  done

  "$bin/enclave-auditd" keygen >/dev/null
  "$bin/enclave-gatewayd" keygen >/dev/null
  taskset -c $load_cpu "$bin/enclave-auditd" run --log-level warn 2>"$work/auditd.log" &
  pids+=($!)
  started "$run/auditd.sock"
  taskset -c $load_cpu "$bin/enclave-sessiond" run --log-level warn 2>"$work/sessiond.log" &
  pids+=($!)
  started "$run/sessiond.sock"
  taskset -c $relay_cpu "$bin/enclave-gatewayd" run --log-level warn 2>"$work/gatewayd.log" &
  gw_pid=$!
  pids+=("$gw_pid")
  started "$run/gatewayd.sock"

  # HAProxy presents the gateway's own certificate and key.
  cat "$work/state/keys/gateway.crt" "$work/state/keys/gateway.key" >"$work/haproxy.pem"
  cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  maxconn 9000
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend rdp
  bind 127.0.0.1:$ha_port ssl crt $work/haproxy.pem
  default_backend desktop
backend desktop
  server sink 127.0.0.1:$tls_port ssl verify none
CFG
  taskset -c $relay_cpu haproxy -db -q -f "$work/haproxy.cfg" 2>"$work/haproxy.log" &
  ha_pid=$!
  pids+=("$ha_pid")
  sleep 0.5
  kill -0 $ha_pid || { cat "$work/haproxy.log" >&2; exit 1; }

  relays=(--gateway "127.0.0.1:$gw_port" --haproxy "127.0.0.1:$ha_port" --sessiond "$run/sessiond.sock")
  echo "== RDP relay: enclave-gatewayd vs HAProxy $(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')," \
    "one thread each on CPU $relay_cpu, load on CPU $load_cpu (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  rounds=${2:-8} seconds=4
  echo "-- throughput: 4 sessions in source mode (16 KiB fast-path PDUs), $rounds rounds of $seconds s per relay, alternating"
  "${load[@]}" throughput "${relays[@]}" --gateway-pid $gw_pid --haproxy-pid $ha_pid \
    --streams 4 --seconds "$seconds" --rounds "$rounds" | tee "$results/throughput.json"
  [[ $what == relay-throughput ]] && exit 0
  echo "-- latency: 64-byte fast-path ping-pong, 20,000 per path, the paths interleaved in 10 rounds"
  "${load[@]}" latency "${relays[@]}" --direct "127.0.0.1:$tls_port" --pings 20000 --rounds 10 \
    | tee "$results/latency.json"
  echo "-- ticket redemption: 200 sequential sessions through the gateway"
  "${load[@]}" redeem --gateway "127.0.0.1:$gw_port" --sessiond "$run/sessiond.sock" \
    --sessions 200 | tee "$results/redeem.json"
  sleep 6  # the gateway's audit events reach the log (checkpoint every 5 s)
  "$bin/enclave-audit" query --type gateway.session.start --json >"$work/starts.json"
  "$bin/relay_load" audit-summary --file "$work/starts.json" --actor-prefix redeem \
    | tee "$results/ttfb.json"
  echo "-- 5,000 idle sessions through each relay, 20 s idle (a 16-byte input PDU every 10 s)"
  "${load[@]}" idle "${relays[@]}" --gateway-pid $gw_pid --haproxy-pid $ha_pid \
    --sessions 5000 --hold 20 | tee "$results/idle.json"

  echo "-- summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bin/relay_load" summary --dir "$results"
  alive $gw_pid $ha_pid
  kill -TERM "${pids[0]}"
  wait "${pids[0]}" || true
  echo "sink: $(tail -1 "$work/sink.out")"
  warnings gatewayd
)
if [[ $what == all || $what == relay || $what == relay-throughput ]]; then
  relay_bench "$@"
fi

# ---- The login path: 50 kiosks (tests/bench/login_load.cpp, on the kiosk library) logging in at
# once through enclave-gatewayd's login API to enclave-sessiond's PAM stack (the shipped template,
# pam_matrix in pam_unix's place) and its ticket, enclave-auditd recording each step; then
# connections from an address in no site's pool against full mutual-TLS handshakes. The three
# services on CPU 0, the kiosks on CPU 1. About 2 minutes. Figures: docs/benchmarks.md, "Login".
login_bench() (
  service_cpu=0 load_cpu=1 kiosks=50 rounds=${2:-10} outside=127.0.0.9 refusals=20000
  pam_matrix=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
  [[ -e $pam_matrix ]] || { echo "$pam_matrix is missing (libpam-wrapper)" >&2; exit 1; }
  work=$(mktemp -d)
  pids=()
  trap stop_all EXIT
  load=(taskset -c "$load_cpu" "$bin/login_load")
  mkdir -p "$work/policies/pam" "$work/state" "$work/results" "$work/kits"
  export ENCLAVE_POLICIES=$work/policies ENCLAVE_STATE_DIR=$work/state
  run=$work/state/run
  results=$work/results

  # The desktop each ticket names: relay_load's synthetic host answers sessiond's health probe.
  taskset -c "$load_cpu" "$bin/relay_load" sink --dir "$work/sink" --rdp-ports 1 >"$work/sink.out" &
  pids+=($!)
  started "$work/sink/sink.env"
  # shellcheck source=/dev/null
  source "$work/sink/sink.env"  # pin, tls_port, rdp_ports
  : "${pin:?}" "${rdp_ports:?}"
  read -r gw_port login_port < <("$bin/relay_load" free-ports 2 | paste -sd' ')

  cp policies/audit.toml "$work/policies/"
  cp -r policies/exitcontrol "$work/policies/"  # sessiond checks the tiers' export profiles
  sed -e "/^\[gateway\]/,/^\[/ s|^listen = .*|listen = \"127.0.0.1:$gw_port\"|" \
    -e "/^\[gateway\.login\]/,/^\[/ s|^listen = .*|listen = \"127.0.0.1:$login_port\"|" \
    policies/gateway.toml >"$work/policies/gateway.toml"
  # The shipped stack with pam_matrix for the password, as the tests run it (pam_unix needs
  # system users); what pam_unix would add is measured apart (password-cost).
  printf 'bench-user-%02d:bench-password:enclave-login\n' $(seq 0 $((kiosks - 1))) >"$work/passdb"
  sed "s|pam_unix\.so|$pam_matrix passdb=$work/passdb|" policies/pam/enclave-login \
    >"$work/policies/pam/enclave-login"
  printf 'user = "bench"\npassword = "bench-password"\ndomain = "BENCH"\n' >"$work/credentials.toml"
  chmod 600 "$work/credentials.toml"
  # One session per user at most, as the shipped tiers allow: login_load ends them between rounds.
  cat >"$work/policies/sessions.toml" <<TOML
[sessiond]
gateway_address = "127.0.0.1:$gw_port"

[tiers.bench]
description = "login benchmark"
static_channels = ["drdynvc"]
dynamic_channels = ["Microsoft::Windows::RDS::Graphics"]
idle_timeout_s = 900
max_session_s = 28800
grace_s = 0
max_sessions_per_compartment = 1000
max_sessions_per_user = 1

[compartments.bench]
description = "the synthetic desktop host of scripts/bench.sh"
tier = "bench"

[[compartments.bench.hosts]]
host = "127.0.0.1"
port = $rdp_ports
pin_sha256 = "$pin"
capacity = 1000
credentials = "fixed"
credentials_file = "$work/credentials.toml"
TOML

  "$bin/enclave-auditd" keygen >/dev/null
  "$bin/enclave-gatewayd" keygen >/dev/null
  taskset -c "$service_cpu" "$bin/enclave-auditd" run --log-level warn 2>"$work/auditd.log" &
  auditd_pid=$!
  pids+=("$auditd_pid")
  started "$run/auditd.sock"
  taskset -c "$service_cpu" "$bin/enclave-sessiond" run --log-level warn 2>"$work/sessiond.log" &
  sessiond_pid=$!
  pids+=("$sessiond_pid")
  started "$run/sessiond.sock"

  # The registry: one room of $kiosks kiosks (its pool 127.0.0.0/30 holds 127.0.0.1, not
  # $outside), a user per kiosk in a project granting the bench compartment, and a steward's
  # approval of each user's enrolment on their kiosk.
  echo "== Login: setting up the registry ($kiosks users and kiosks)"
  ctl() { "$bin/enclavectl" "$@" >/dev/null || { echo "enclavectl $* failed" >&2; exit 1; }; }
  ctl ca init
  ctl gateway cert --name 127.0.0.1 --replace
  ctl user add bench-steward --name "Bench steward" --role steward
  ctl site add room-bench --name "Bench room" --ike-id room-bench.sites.example --pool 127.0.0.0/30
  ctl site approve room-bench --until 2099-01-01
  ctl project add bench --title "Login benchmark" --from "$(date -u -d yesterday +%F)" \
    --until 2099-01-01
  ctl project grant bench bench
  for i in $(seq -f %02g 0 $((kiosks - 1))); do
    ctl user add "bench-user-$i" --name "Bench user $i" --role analyst
    ctl project member add bench "bench-user-$i"
    ctl device kit room-bench --id "bench-kiosk-$i" --out "$work/kits/bench-kiosk-$i"
    ctl enrolment approve "bench-user-$i" "bench-kiosk-$i" --by bench-steward
  done
  taskset -c "$service_cpu" "$bin/enclave-gatewayd" run --log-level warn 2>"$work/gatewayd.log" &
  gw_pid=$!
  pids+=("$gw_pid")
  started "$run/gatewayd.sock"

  api=(--gateway "127.0.0.1:$login_port")
  "${load[@]}" enrol "${api[@]}" --kits "$work/kits" --kiosks $kiosks >"$results/enrol.json"
  logins=("${load[@]}" logins "${api[@]}" --kits "$work/kits" --sessiond "$run/sessiond.sock"
    --gateway-pid "$gw_pid" --sessiond-pid "$sessiond_pid" --auditd-pid "$auditd_pid")
  echo "== Login: services on CPU $service_cpu, kiosks on CPU $load_cpu (load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg))"
  echo "-- one kiosk alone, $rounds rounds: the unloaded baseline"
  "${logins[@]}" --kiosks 1 --rounds "$rounds" | tee "$results/login_single.json"
  echo "-- $kiosks kiosks starting within 1 s, each person taking 0.5-1.5 s over each answer,"
  echo "   $rounds rounds (the target's case: $kiosks logins in progress together, the people's own"
  echo "   time left out)"
  "${logins[@]}" --kiosks $kiosks --rounds "$rounds" --spread-ms 1000 --think-ms 1000 \
    | tee "$results/logins_thinking.json"
  echo "-- $kiosks kiosks at once, answering instantly, $rounds rounds after a warm-up (a stress"
  echo "   case: the whole of $kiosks logins in one burst)"
  "${logins[@]}" --kiosks $kiosks --rounds "$rounds" | tee "$results/logins.json"
  echo "-- $kiosks kiosks spread over 1 s (50 logins/s arriving), $rounds rounds"
  "${logins[@]}" --kiosks $kiosks --rounds "$rounds" --spread-ms 1000 \
    | tee "$results/logins_spread.json"
  echo "-- pam_unix's own cost: crypt_r of a yescrypt hash at Debian's default cost"
  "${load[@]}" password-cost | tee "$results/password.json"
  echo "-- $refusals connections from $outside (in no pool) against 2,000 mutual-TLS handshakes"
  "${load[@]}" refusals "${api[@]}" --gateway-pid $gw_pid --auditd-pid $auditd_pid \
    --kit "$work/kits/bench-kiosk-00" --outside $outside --connections $refusals \
    --handshakes 2000 | tee "$results/refusals.json"
  sleep 6  # the gateway's audit events reach the log (checkpoint every 5 s)
  "$bin/enclave-audit" query --type gateway.login.refused --json >"$work/refused.json"
  "$bin/login_load" refusal-audit --file "$work/refused.json" --client $outside \
    --expect $refusals >"$results/refusal_audit.json" || true

  echo "-- summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bin/login_load" summary --dir "$results"
  alive $gw_pid $sessiond_pid $auditd_pid
  warnings gatewayd sessiond auditd
)
if [[ $what == all || $what == login ]]; then
  login_bench "$@"
fi

# ---- The export service: enclave-auditd, enclave-sessiond and enclave-exportd on CPU 0, the load
# tool on CPU 1. exports.db is seeded with 10,000 requests waiting for review (export_load seed:
# the product's own store and engine step) before exportd starts; export.queue is timed against
# the same query in the sqlite3 command-line tool (on CPU 0, as exportd), the whole queue page
# after page and its first page alone. Then a session on a
# local shadow desktop submits a 100 MB text file and a 100 MB table from its outbox, timed
# until waiting_review, against the engine alone (engine_check, as exportd runs it) and against
# cp + sha256sum (all on CPU 0). About 2 minutes. Figures: docs/benchmarks.md, "Exports".
export_bench() (
  service_cpu=0 load_cpu=1 requests=10000 projects=10
  work=$(mktemp -d)
  pids=()
  trap stop_all EXIT
  load=(taskset -c "$load_cpu" "$bin/export_load")
  mkdir -p "$work/policies" "$work/state" "$work/results" "$work/files" "$work/peer"
  export ENCLAVE_POLICIES=$work/policies ENCLAVE_STATE_DIR=$work/state
  state=$work/state
  run=$state/run
  results=$work/results
  db=$state/exitcontrol/exports.db

  cp policies/audit.toml "$work/policies/"
  cp -r policies/exitcontrol "$work/policies/"
  read -r download_port < <("$bin/relay_load" free-ports 1)
  sed "s|^listen = .*|listen = \"127.0.0.1:$download_port\"|" policies/exports.toml \
    >"$work/policies/exports.toml"
  # The shipped [sessiond] section (the ticket is never redeemed: it must last the run), and
  # one tier on a local shadow desktop, checked with the default profile by one steward.
  sed -e '/^# ---- tiers/,$d' -e 's|^ticket_ttl_s = .*|ticket_ttl_s = 600|' \
    policies/sessions.toml >"$work/policies/sessions.toml"
  cat >>"$work/policies/sessions.toml" <<TOML
[tiers.bench]
description = "export benchmark"
idle_timeout_s = 3600
max_session_s = 28800
grace_s = 0
max_sessions_per_user = 1
export_profile = "acro-default"
export_stewards = 1

[compartments.bench]
description = "the export benchmark's session"
tier = "bench"
local = { kind = "shadow", max_desktops = 1 }
TOML

  "$bin/enclave-auditd" keygen >/dev/null
  taskset -c $service_cpu "$bin/enclave-auditd" run --log-level warn 2>"$work/auditd.log" &
  pids+=($!)
  started "$run/auditd.sock"
  taskset -c $service_cpu "$bin/enclave-sessiond" run --log-level warn 2>"$work/sessiond.log" &
  pids+=($!)
  started "$run/sessiond.sock"

  # The registry: a steward in ten projects that grant the bench compartment, an analyst in
  # the first.
  echo "== Exports: setting up the registry and seeding exports.db ($requests requests)"
  ctl() { "$bin/enclavectl" "$@" >/dev/null || { echo "enclavectl $* failed" >&2; exit 1; }; }
  ctl user add bench-steward --name "Bench steward" --role steward
  ctl user add bench-analyst --name "Bench analyst" --role analyst
  project_list=()
  for i in $(seq -f %02g 0 $((projects - 1))); do
    ctl project add "p-$i" --title "Export benchmark $i" --from "$(date -u -d yesterday +%F)" \
      --until 2099-01-01
    ctl project member add "p-$i" bench-steward
    ctl project grant "p-$i" bench
    project_list+=("p-$i")
  done
  ctl project member add p-00 bench-analyst
  "$bin/export_load" seed --db "$db" --policies "$work/policies" --examples docs/examples/exitcontrol \
    --requests $requests --projects $projects | tee "$results/seed.json"

  taskset -c $service_cpu "$bin/enclave-exportd" run --log-level warn 2>"$work/exportd.log" &
  exportd_pid=$!
  pids+=("$exportd_pid")
  started "$run/exportd.sock"

  echo "== Exports: services on CPU $service_cpu, load on CPU $load_cpu (load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg))"
  queue=("${load[@]}" queue --socket "$run/exportd.sock" --as bench-steward --db "$db"
    --steward-projects "$(IFS=,; echo "${project_list[*]}")" --peer-cpu $service_cpu
    --exportd-pid "$exportd_pid" --calls 50)
  echo "-- export.queue: all $requests requests in $projects projects, page after page (1,000 a page), 50 calls, interleaved with sqlite3"
  "${queue[@]}" | tee "$results/queue.json"
  echo "-- the same, the first page as enclavectl asks for it (500)"
  "${queue[@]}" --limit 500 | tee "$results/queue_page.json"
  echo "-- the same, one project of $projects"
  "${queue[@]}" --project p-03 | tee "$results/queue_project.json"
  echo "-- enclavectl export queue --as bench-steward --project p-03 --limit 1000 --json, 20 runs"
  "${load[@]}" run --times 20 --expect $((requests / projects)) -- "$bin/enclavectl" export \
    queue --as bench-steward --project p-03 --limit 1000 --json | tee "$results/queue_cli.json"

  echo "-- a session on a local shadow desktop; 100 MB files in its outbox"
  session=$("$bin/enclavectl" ticket issue --user bench-analyst --device bench-kiosk \
    --source 127.0.0.1 --compartment bench --json | sed -n 's/.*"session_id": *"\([^"]*\)".*/\1/p')
  [[ -n $session ]] || { echo "no session was issued" >&2; exit 1; }
  outbox=$state/exitcontrol/outbox/$session
  "$bin/export_load" make-files --dir "$work/files" --bytes 100000000 | tee "$results/files.json"
  cp "$work/files"/* "$outbox/"
  sync  # the files' writeback is not charged to the first round
  submit=("${load[@]}" submit --socket "$run/exportd.sock" --outbox "$outbox"
    --policies "$work/policies" --ledger "$state/exitcontrol/ledger.db" --project p-00 \
    --profile acro-default --rounds 3
    --scratch "$work/peer" --peer-cpu $service_cpu --exportd-pid "$exportd_pid")
  echo "-- submit the 100 MB text file, 3 rounds (peers, engine, service in each)"
  "${submit[@]}" --file bench-notes.txt | tee "$results/submit_text.json"
  echo "-- submit the 100 MB table with its sidecar, 3 rounds"
  "${submit[@]}" --file bench-outpatients.csv | tee "$results/submit_table.json"

  echo "-- summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bin/export_load" summary --dir "$results"
  alive "${pids[@]}"
  warnings exportd sessiond auditd
)
if [[ $what == all || $what == export ]]; then
  export_bench "$@"
fi
[[ $what != all && $what != audit ]] && exit 0

work=$(mktemp -d)
trap 'kill $auditd 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/policies"
sed "s|^socket = .*|socket = \"$work/auditd.sock\"|" policies/audit.toml >"$work/policies/audit.toml"
export ENCLAVE_POLICIES=$work/policies ENCLAVE_STATE_DIR=$work/state
"$bin/enclave-auditd" keygen >/dev/null
"$bin/enclave-auditd" run --log-level warn &
auditd=$!
for _ in $(seq 100); do [[ -S $work/auditd.sock ]] && break; sleep 0.1; done

echo "== enclave-auditd, default policy (checkpoint every 1000 entries / 5 s, off-box file)"
sync
sleep 30  # let the build's writes and any trims settle
# This machine's root file system is mounted with `discard`: files deleted just before (an
# earlier run's state) are trimmed at the next journal commits, and fsyncs stall behind the
# trim for up to a second. A warm-up run absorbs that; its figures are printed, not recorded.
echo "-- warm-up: open loop, 1,000 appends/s, 10 s"
"$bin/audit_load" --socket "$work/auditd.sock" --clients 8 --rate 1000 --seconds 10
echo "-- open loop, 1,000 appends/s from 8 clients, 3 runs of 20 s, each after the disk's own"
echo "   floor: an 8 KiB append fsynced 1,000 times a second for 5 s (fsync-probe)"
for _ in 1 2 3; do
  "$bin/audit_load" --fsync-probe "$work" --seconds 5
  "$bin/audit_load" --socket "$work/auditd.sock" --clients 8 --rate 1000 --seconds 20
done
echo "-- closed loop, 8 clients, 64 appends in flight each, 10 s"
"$bin/audit_load" --socket "$work/auditd.sock" --clients 8 --window 64 --seconds 10
echo "-- closed loop, 8 clients, 1 append in flight each, 10 s"
"$bin/audit_load" --socket "$work/auditd.sock" --clients 8 --window 1 --seconds 10
kill -TERM $auditd
wait $auditd || true
echo "-- the peer: SQLite, same schema and durability, one transaction per append, 8 clients, 10 s"
"$bin/audit_load" --naive-sqlite "$work" --clients 8 --seconds 10

echo "== Merkle tree (in memory)"
"$bin/merkle_bench" "${repeat[@]}"
echo "== Tiled proofs (in-memory node store)"
"$bin/tiles_bench" "${repeat[@]}"
echo "== The audit store at 1,000,000 events"
"$bin/audit_store_bench"
