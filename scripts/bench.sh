#!/usr/bin/env bash
# On-demand benchmarks (never in CI): builds a Release tree without sanitizers, then measures
# every figure docs/benchmarks.md records. Run it on a quiet machine.
#   ./scripts/bench.sh              everything (about 12 minutes, plus 1 minute the first time to
#                                   build the 1,000,000-event fixture under $TMPDIR)
#   ./scripts/bench.sh audit        the audit trail only
#   ./scripts/bench.sh exitcontrol  the exit-control engine only (about 4 minutes)
#   ./scripts/bench.sh relay        the RDP relay against HAProxy only (about 4 minutes)
#   ./scripts/bench.sh relay-throughput [ROUNDS]
#                                   the relay's throughput part only, ROUNDS rounds (default 8)
set -euo pipefail
what=${1:-all}
case $what in
  all | audit | exitcontrol | relay | relay-throughput) ;;
  *) echo "usage: $0 [all|audit|exitcontrol|relay|relay-throughput [ROUNDS]]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
build=build/bench
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

# ---- The RDP relay: enclave-gatewayd against HAProxy doing the same work (TLS terminated from
# the client, TLS again to the desktop, one thread), both pinned to CPU 0; the load tool (clients
# and the synthetic desktop host) on CPU 1. About 4 minutes. Figures: docs/benchmarks.md.
relay_bench() (
  relay_cpu=0 load_cpu=1
  work=$(mktemp -d)
  pids=()
  stop_all() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
  }
  trap stop_all EXIT
  started() {  # started PATH: waits for a socket or file the last started process makes
    for _ in $(seq 100); do
      [[ -e $1 ]] && return 0
      kill -0 "${pids[-1]}" 2>/dev/null || { echo "process ${pids[-1]} exited before $1" >&2; exit 1; }
      sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    exit 1
  }
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
  for p in $gw_pid $ha_pid; do kill -0 $p || { echo "relay process $p died" >&2; exit 1; }; done
  kill -TERM "${pids[0]}"
  wait "${pids[0]}" || true
  echo "sink: $(tail -1 "$work/sink.out")"
  if [[ -s $work/gatewayd.log ]]; then
    echo "enclave-gatewayd warnings (count, message):"
    sed 's/^[^ ]* [^ ]* //' "$work/gatewayd.log" | sort | uniq -c | sort -rn | head -5
  fi
)
if [[ $what == all || $what == relay || $what == relay-throughput ]]; then
  relay_bench "$@"
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
