#!/usr/bin/env bash
# verify.sh: what checksum verification costs a cold build. `go mod download all`
# of bench/proxy/graph, with empty stores and module caches, three ways in each
# round (interleaved A B C A B C, medians):
#
#   direct:   the go command straight from the upstream
#   verified: through a cold berth verifying every .mod and .zip (the default)
#   off:      through a cold berth with --sumdb off
#
# and prints verified/off (target <= 1.05), verified/direct (target <= 1.10
# pinned apart), and the upstream requests per module version of each
# (verified <= 1.5x off). Every variant reaches the upstream through
# bench/proxy/delay, which counts requests and can add latency:
#
#   bench/proxy/verify.sh [ROUNDS]                     the upstream as it is
#   DELAY=40ms bench/proxy/verify.sh                   40 ms added per request
#   DELAY=150ms NO_REUSE=1 bench/proxy/verify.sh       150 ms and a new connection each time
#   PIN=1 bench/proxy/verify.sh                        client on core 0, berth on core 1 (taskset)
#   DELAY_LOG=1 bench/proxy/verify.sh                  log every upstream request path to $OUT/delay.log
#
# It talks to the real upstream: the first entry of `go env GOPROXY` (or
# $BERTH_BENCH_UPSTREAM). It is a benchmark you run by hand, never part of CI.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-verify.XXXXXX)}
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
UP=${BERTH_BENCH_UPSTREAM:-$(go env GOPROXY | sed 's/[,|].*//')}
case "$UP" in http*) ;; *) echo "bench: first GOPROXY entry $UP is not a proxy URL; set BERTH_BENCH_UPSTREAM"; exit 2;; esac
curl -fs -o /dev/null --max-time 10 "$UP/golang.org/x/mod/@v/list" || { echo "bench: upstream not reachable; skipping"; exit 0; }
build_berth
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/delay" ./bench/proxy/delay)
DP=$(free_port)
"$OUT/delay" -listen "127.0.0.1:$DP" -upstream "$UP" -delay "${DELAY:-0s}" ${NO_REUSE:+-no-reuse} ${DELAY_LOG:+-v} 2>>"$OUT/delay.log" &
DPID=$!
UPD="http://127.0.0.1:$DP"
wait_http "$UPD/golang.org/x/mod/@v/list"
CLIENT=(); SERVER=()
if [ -n "${PIN:-}" ]; then need taskset util-linux; CLIENT=(taskset -c 0); SERVER=(taskset -c 1); fi

GRAPH="$ROOT/bench/proxy/graph"
MC=$(mktemp -d "${MC_BASE:-/dev/shm}/berth-bench-mc.XXXXXX" 2>/dev/null || mktemp -d "$OUT/mc-base.XXXXXX")
# counts: "total lookup tile" passed by the delay proxy so far
counts() { curl -fs "$UPD/.delay/count" | awk '{n[$1]=$2} END {print n["total"], n["lookup"], n["tile"]}'; }
download() { # PROXY MODCACHE -> wall seconds
  local dir; dir=$(mktemp -d "$OUT/main.XXXX"); cp "$GRAPH"/go.mod "$GRAPH"/go.sum "$GRAPH"/main.go "$dir"
  local t0 t1; t0=$(date +%s.%N)
  (cd "$dir" && env GOPROXY="$1" GOMODCACHE="$2" GOFLAGS=-modcacherw GONOSUMDB= GOPRIVATE= GONOPROXY= GOTOOLCHAIN=local \
     "${CLIENT[@]}" go mod download all >"$OUT/download.log" 2>&1) || { echo "bench: go mod download through $1 failed:" >&2; cat "$OUT/download.log" >&2; exit 1; }
  t1=$(date +%s.%N); rm -rf "$dir"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b-a }'
}
BPID=
start_berth() { # STORE PORT ARGS...
  local store=$1 port=$2; shift 2
  "${SERVER[@]}" "$OUT/berth" proxy --listen "127.0.0.1:$port" --store "$store" --upstream "$UPD" --log-level warn "$@" 2>>"$OUT/berth.log" &
  BPID=$!; wait_http "http://127.0.0.1:$port/healthz"
}
stop_berth() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null; BPID=; }
trap 'stop_berth; kill $DPID 2>/dev/null; rm -rf "$MC"' EXIT
P=$(free_port)
# run NAME PROXY [berth args...]: one cold download; appends
# "seconds requests lookups tiles" (upstream requests during it) to $OUT/NAME
run() {
  local name=$1; shift
  rm -rf "$MC/mc" "$OUT/store"
  if [ "$1" = berth ]; then shift; start_berth "$OUT/store" "$P" "$@"; proxy="http://127.0.0.1:$P"; else proxy=$UPD; fi
  local c0; c0=$(counts)
  local t; t=$(download "$proxy" "$MC/mc")
  stop_berth
  echo "$t $(counts) $c0" | awk '{print $1, $2-$5, $3-$6, $4-$7}' >>"$OUT/$name"
}

NVERS=$(cd "$GRAPH" && go list -m all | tail -n +2 | wc -l)
echo "graph: $NVERS module versions; upstream: first GOPROXY entry through bench/proxy/delay (delay ${DELAY:-0s}${NO_REUSE:+, no connection reuse})${PIN:+; client on core 0, berth on core 1}; $ROUNDS rounds"
: >"$OUT/direct"; : >"$OUT/verified"; : >"$OUT/off"
reqs() { tail -1 "$OUT/$1" | awk '{printf "%d (%d, %d)", $2, $3, $4}'; }
for i in $(seq 1 "$ROUNDS"); do
  run direct direct
  run verified berth
  run off berth --sumdb off
  echo "round $i: direct $(tail -1 "$OUT/direct" | awk '{print $1}')s, verified $(tail -1 "$OUT/verified" | awk '{print $1}')s, off $(tail -1 "$OUT/off" | awk '{print $1}')s;" \
       "upstream requests (lookups, tiles): direct $(reqs direct), verified $(reqs verified), off $(reqs off)"
done
med() { awk -v c="$2" '{print $c}' "$OUT/$1" | median; }
d=$(med direct 1); v=$(med verified 1); o=$(med off 1)
rd=$(med direct 2); rv=$(med verified 2); ro=$(med off 2)
echo
echo "cold, medians of $ROUNDS: direct ${d}s, berth verified ${v}s, berth --sumdb off ${o}s"
echo "  verified / off:    $(ratio "$v" "$o") (target <= 1.05)"
echo "  verified / direct: $(ratio "$v" "$d") (target <= 1.10 with PIN=1)"
echo "upstream requests, medians of $ROUNDS: direct $rd, verified $rv (lookups $(med verified 3), tiles $(med verified 4)), off $ro (lookups $(med off 3), tiles $(med off 4))"
echo "upstream requests per module version: direct $(ratio "$rd" "$NVERS"), verified $(ratio "$rv" "$NVERS"), off $(ratio "$ro" "$NVERS");" \
     "verified / off $(ratio "$rv" "$ro") (target <= 1.5)"
curl -fs "$UPD/.delay/count" | sed 's/^/  delay proxy total since start: /'
