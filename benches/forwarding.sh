#!/usr/bin/env bash
# Forwarding benchmark: records/s from a ring to a real rsyslogd on loopback over plain TCP,
# syslog+TLS, RELP and RELP+TLS, end to end: from the first record written until rsyslog's
# file holds every one of them (counted, not assumed). Also prints what says which side limits
# the rate: the CPU time the drain and rsyslogd used, the drain's wake-ups (voluntary context
# switches), and for rsyslogd's busiest thread its time on a CPU and its time runnable but
# waiting for one (from /proc/PID/task/TID/schedstat): a thread on or waiting for a CPU for
# nearly the whole run is the limit.
#
#   bash benches/forwarding.sh [RECORDS] [WINDOW] [QUEUE]     (defaults: 200000, 128, direct)
#
# QUEUE is the receiver's ruleset queue: `direct` (the README's receiver config: the input
# thread writes each message before it is acknowledged) or `memory` (rsyslog's default in-memory
# main queue, whose worker the input thread wakes for every message).
#
# Needs rsyslog, rsyslog-relp, rsyslog-openssl and openssl; builds the release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-200000}
window=${2:-128}
queue=${3:-direct}
case $queue in
  direct) ruleset_queue=' queue.type="Direct"' ;;
  memory) ruleset_queue='' ;;
  *) echo "QUEUE must be direct or memory" >&2; exit 2 ;;
esac
cargo build --release --quiet -p ringlog-drain -p ringlog-pipe --bins
bin=target/release
dir=$(mktemp -d)
trap 'kill $(cat "$dir"/rs.pid 2>/dev/null) 2>/dev/null; rm -rf "$dir"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tcp=$(port); tls=$(port); relp=$(port); relptls=$(port)
cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir" maxMessageSize="64k"
       DefaultNetstreamDriverCAFile="$dir/ca.pem" DefaultNetstreamDriverCertFile="$dir/server.pem"
       DefaultNetstreamDriverKeyFile="$dir/server.key")
module(load="imtcp")
module(load="imrelp" tls.tlslib="openssl")
input(type="imtcp" address="127.0.0.1" port="$tcp" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="$tls" ruleset="out"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imrelp" address="127.0.0.1" port="$relp" ruleset="out")
input(type="imrelp" address="127.0.0.1" port="$relptls" ruleset="out" tls="on"
      tls.cacert="$dir/ca.pem" tls.mycert="$dir/server.pem" tls.myprivkey="$dir/server.key")
template(name="text" type="string" string="%msg%\n")
ruleset(name="out"$ruleset_queue) { action(type="omfile" file="$dir/received.log" template="text") }
EOF
rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
"$rsyslogd" -f "$dir/rsyslog.conf" -i "$dir/rs.pid"
for _ in $(seq 100); do [ -s "$dir/rs.pid" ] && break; sleep 0.05; done
rspid=$(cat "$dir/rs.pid")
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Each rsyslogd thread: "name ns-on-cpu ns-runnable-waiting" per line (its input thread is the
# one to watch: librelp answers every message with its own setsockopt/send/setsockopt).
threads() { for t in /proc/"$rspid"/task/*; do echo "$(tr ' ' _ <"$t/comm") $(cut -d' ' -f1,2 "$t/schedstat")"; done; }
# The drain's main thread (the one that delivers to an --out receiver): its wake-ups.
wakeups() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

seq -f "bench record %08g abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz" 1 "$records" >"$dir/input"
echo "forwarding $records records of ~100 B to rsyslogd on loopback (window $window, $queue queue); load: $(uptime | sed 's/.*load/load/')"
run() {
  local name=$1 url=$2; shift 2
  local ring="fwbench-$$-${name//+/-}"  # ring names allow [A-Za-z0-9._-] only
  : >"$dir/received.log"
  "$bin/ringlog-drain" --ring "$ring" --out "$url" --relp-window "$window" "$@" 2>"$dir/drain.err" &
  local drain=$!
  for _ in $(seq 200); do [ -e "/dev/shm/ringlog-$ring" ] && break; sleep 0.01; done
  local rs0; rs0=$(cpu "$rspid")
  local wakes0; wakes0=$(wakeups "$drain")
  threads >"$dir/threads0"
  local t0; t0=$(date +%s.%N)
  "$bin/ringlog-pipe" --ring "$ring" <"$dir/input"
  while [ "$(wc -l <"$dir/received.log")" -lt "$records" ]; do sleep 0.005; done
  local t1; t1=$(date +%s.%N)
  local dcpu; dcpu=$(cpu "$drain")
  local wakes; wakes=$(( $(wakeups "$drain") - wakes0 ))
  local rs1; rs1=$(cpu "$rspid")
  threads >"$dir/threads1"
  local busiest; busiest=$(paste "$dir/threads0" "$dir/threads1" | awk \
    '{ d=$5-$2; if (d>=m) { m=d; w=$6-$3; n=$1 } } END { printf "%s %.2f s on a CPU + %.2f s waiting for one", n, m/1e9, w/1e9 }')
  kill "$drain"; wait "$drain" || true
  rm -f "/dev/shm/ringlog-$ring" "/dev/shm/ringlog-$ring".*  # and the RELP journal beside it
  awk -v n="$records" -v a="$t0" -v b="$t1" -v d="$dcpu" -v r0="$rs0" -v r1="$rs1" -v hz="$hz" -v name="$name" \
    -v busiest="$busiest" -v wakes="$wakes" \
    'BEGIN { s=b-a; printf "  %-10s %9.0f records/s  (%.2f s; CPU: drain %.2f s, %d wake-ups; rsyslogd %.2f s, its busiest thread %s)\n", name, n/s, s, d/hz, wakes, (r1-r0)/hz, busiest }'
}
run tcp "syslog+tcp://127.0.0.1:$tcp"
run tls "syslog+tls://127.0.0.1:$tls" --tls-ca "$dir/ca.pem"
run relp "relp://127.0.0.1:$relp"
run relp+tls "relp+tls://127.0.0.1:$relptls" --tls-ca "$dir/ca.pem"
