#!/usr/bin/env bash
# gomod.sh: `go mod download all` of a real module graph (bench/proxy/graph,
# about 150 modules) through berth, compared in one run with the physical limits:
#
#   cold:  through a cold berth        vs  straight from the upstream      (target <= 1.05)
#   warm:  through a warm berth        vs  GOPROXY=file:// of berth's store (target <= 1.05)
#   storm: 8 cold clients at once through one cold berth: upstream fetches per
#          file (target 1) and wall time vs one cold client (target <= 1.2)
#
#   bench/proxy/gomod.sh [ROUNDS]      (default 3; runs are interleaved A B A B;
#                                       WARM_EXTRA more warm pairs follow, default 6)
#
# This talks to the real upstream: the first entry of `go env GOPROXY` (or
# $BERTH_BENCH_UPSTREAM), through an added latency if BERTH_BENCH_DELAY is set
# (e.g. 40ms). It is a benchmark you run by hand, never part of CI.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-gomod.XXXXXX)}
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
WARM_EXTRA=${WARM_EXTRA:-6}
UP=${BERTH_BENCH_UPSTREAM:-$(go env GOPROXY | sed 's/[,|].*//')}
case "$UP" in http*) ;; *) echo "bench: first GOPROXY entry $UP is not a proxy URL; set BERTH_BENCH_UPSTREAM"; exit 2;; esac
curl -fs -o /dev/null --max-time 10 "$UP/golang.org/x/mod/@v/list" || { echo "bench: upstream not reachable; skipping"; exit 0; }
build_berth
# BERTH_BENCH_DELAY=40ms puts bench/proxy/delay in front of the upstream, for
# direct and berth alike: a distant upstream, where clients wait more than they
# compute.
DPID=
if [ -n "${BERTH_BENCH_DELAY:-}" ]; then
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/delay" ./bench/proxy/delay)
  DP=$(free_port)
  "$OUT/delay" -listen "127.0.0.1:$DP" -upstream "$UP" -delay "$BERTH_BENCH_DELAY" 2>>"$OUT/delay.log" &
  DPID=$!
  UP="http://127.0.0.1:$DP"
  wait_http "$UP/golang.org/x/mod/@v/list"
fi
GRAPH="$ROOT/bench/proxy/graph"
# The go command extracts every zip into its module cache (about 600 MB of small
# files for this graph); that disk I/O is the same for every variant and only
# adds noise, so module caches live in memory (tmpfs) when possible.
MC=$(mktemp -d "${MC_BASE:-/dev/shm}/berth-bench-mc.XXXXXX" 2>/dev/null || mktemp -d "$OUT/mc-base.XXXXXX")
NMODS=$(cd "$GRAPH" && go list -m all | wc -l)

now() { date +%s.%N; }
TIMEFORMAT='%R %U %S'
# download PROXY MODCACHE -> "wall-seconds client-CPU-seconds" on stdout
download() {
  local dir t; dir=$(mktemp -d "$OUT/main.XXXX"); cp "$GRAPH"/go.mod "$GRAPH"/go.sum "$GRAPH"/main.go "$dir"
  t=$( { time (cd "$dir" && env GOPROXY="$1" GOMODCACHE="$2" GOFLAGS=-modcacherw GONOSUMDB= GOPRIVATE= GONOPROXY= GOTOOLCHAIN=local \
     go mod download all >"$OUT/download.log" 2>&1) ; } 2>&1 ) || { echo "bench: go mod download through $1 failed:" >&2; cat "$OUT/download.log" >&2; exit 1; }
  echo "$t" | awk '{ printf "%.2f %.2f\n", $1, $2+$3 }'
  rm -rf "$dir"
}
TCK=$(getconf CLK_TCK)
berth_cpu() { awk -v t="$TCK" '{ printf "%.2f\n", ($14+$15)/t }' "/proc/$BPID/stat"; }
col() { awk -v c="$1" '{ print $c }'; }
BPID=
start_berth() { # STORE PORT
  "$OUT/berth" proxy --listen "127.0.0.1:$2" --store "$1" --upstream "$UP" --log-level warn 2>>"$OUT/berth.log" &
  BPID=$!; wait_http "http://127.0.0.1:$2/healthz"
}
stop_berth() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null; BPID=; }
trap 'stop_berth; [ -n "$DPID" ] && kill "$DPID"; rm -rf "$MC"' EXIT
P=$(free_port)

echo "graph: $NMODS modules; upstream: first GOPROXY entry${BERTH_BENCH_DELAY:+ behind an added ${BERTH_BENCH_DELAY}}; $ROUNDS interleaved rounds"
: >"$OUT/cold.direct"; : >"$OUT/cold.berth"; : >"$OUT/warm.file"; : >"$OUT/warm.berth"; : >"$OUT/cpu.cold"; : >"$OUT/cpu.warm"
for i in $(seq 1 "$ROUNDS"); do
  rm -rf "$MC/mc"; download "$UP" "$MC/mc" >>"$OUT/cold.direct"
  rm -rf "$MC/mc" "$OUT/store"; start_berth "$OUT/store" "$P"
  c0=$(berth_cpu); download "http://127.0.0.1:$P" "$MC/mc" >>"$OUT/cold.berth"
  c1=$(berth_cpu); echo "$c1 - $c0" | bc >>"$OUT/cpu.cold"
  # warm: same store, fresh module caches
  rm -rf "$MC/mc"; download "file://$OUT/store" "$MC/mc" >>"$OUT/warm.file"
  rm -rf "$MC/mc"; c0=$(berth_cpu); download "http://127.0.0.1:$P" "$MC/mc" >>"$OUT/warm.berth"
  c1=$(berth_cpu); echo "$c1 - $c0" | bc >>"$OUT/cpu.warm"
  stop_berth
  echo "round $i: cold direct $(tail -1 "$OUT/cold.direct" | col 1)s berth $(tail -1 "$OUT/cold.berth" | col 1)s;" \
       "warm file:// $(tail -1 "$OUT/warm.file" | col 1)s berth $(tail -1 "$OUT/warm.berth" | col 1)s"
done
# More warm pairs on the last store: they are cheap, and the warm gap is small
# next to this machine's noise.
if [ "$WARM_EXTRA" -gt 0 ]; then
  start_berth "$OUT/store" "$P"
  for i in $(seq 1 "$WARM_EXTRA"); do
    rm -rf "$MC/mc"; download "file://$OUT/store" "$MC/mc" >>"$OUT/warm.file"
    rm -rf "$MC/mc"; c0=$(berth_cpu); download "http://127.0.0.1:$P" "$MC/mc" >>"$OUT/warm.berth"
    c1=$(berth_cpu); echo "$c1 - $c0" | bc >>"$OUT/cpu.warm"
    echo "warm pair $i: file:// $(tail -1 "$OUT/warm.file" | col 1)s berth $(tail -1 "$OUT/warm.berth" | col 1)s"
  done
  stop_berth
fi
cd_=$(col 1 <"$OUT/cold.direct" | median); cb=$(col 1 <"$OUT/cold.berth" | median)
wf=$(col 1 <"$OUT/warm.file" | median); wb=$(col 1 <"$OUT/warm.berth" | median)
cd_cpu=$(col 2 <"$OUT/cold.direct" | median); cb_cpu=$(col 2 <"$OUT/cold.berth" | median)
wf_cpu=$(col 2 <"$OUT/warm.file" | median); wb_cpu=$(col 2 <"$OUT/warm.berth" | median)
bcold=$(median <"$OUT/cpu.cold"); bwarm=$(median <"$OUT/cpu.warm")

# Storm: 8 cold clients at once through one cold berth.
rm -rf "$OUT/store" "$MC"/mc*; start_berth "$OUT/store" "$P"
t0=$(now)
pids=()
for c in 1 2 3 4 5 6 7 8; do download "http://127.0.0.1:$P" "$MC/mc$c" >"$OUT/storm.$c" & pids+=($!); done
wait "${pids[@]}"
storm=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b-a }')
metrics=$(curl -fs "http://127.0.0.1:$P/metrics")
stop_berth
zips=$(find "$OUT/store" -name '*.zip' | wc -l)
mods=$(find "$OUT/store" -name '*.mod' | wc -l)
zipf=$(echo "$metrics" | awk '/^berth_proxy_upstream_fetches_total\{endpoint="zip"/ {s+=$2} END {print s+0}')
modf=$(echo "$metrics" | awk '/^berth_proxy_upstream_fetches_total\{endpoint="mod"/ {s+=$2} END {print s+0}')

# The floor for the storm: the same 8 clients at once with no proxy at all,
# reading berth's store as GOPROXY=file://.
rm -rf "$MC"/mc*
t0=$(now)
pids=()
for c in 1 2 3 4 5 6 7 8; do download "file://$OUT/store" "$MC/mc$c" >/dev/null & pids+=($!); done
wait "${pids[@]}"
floor=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b-a }')
# The least CPU verification costs: hashing every zip of the graph once.
hashcpu=$(cd "$ROOT" && go run ./bench/proxy/hashcost "$OUT/store")

echo
echo "cold go mod download all ($NMODS modules), median of $ROUNDS: berth ${cb}s, upstream directly ${cd_}s, ratio $(ratio "$cb" "$cd_") (target <= 1.05)"
echo "warm go mod download all, median of $((ROUNDS + WARM_EXTRA)): berth ${wb}s, GOPROXY=file:// ${wf}s, ratio $(ratio "$wb" "$wf") (target <= 1.05)"
echo "8 cold clients at once: ${storm}s vs one cold client through berth ${cb}s, ratio $(ratio "$storm" "$cb") (target <= 1.2)"
echo "  upstream fetches: $zipf for $zips zips, $modf for $mods .mod files (target: one per file)"
echo
echo "CPU seconds (medians; $(nproc) cores):"
echo "  cold: go client ${cb_cpu} through berth, ${cd_cpu} direct; berth ${bcold}"
echo "  warm: go client ${wb_cpu} through berth, ${wf_cpu} from file://; berth ${bwarm}"
echo "  hashing every zip of the graph once (what verification must do before a file is released): ${hashcpu}"
echo "  a cold ratio of 1.05 leaves berth $(awk -v w="$cd_" -v n="$(nproc)" -v c="$cd_cpu" 'BEGIN { printf "%.2f", w*1.05*n - c }') CPU-s of the cores' $(awk -v w="$cd_" -v n="$(nproc)" 'BEGIN { printf "%.2f", w*1.05*n }') if the client used them as it did direct"
echo "8 clients at once from GOPROXY=file:// (no proxy): ${floor}s, $(ratio "$floor" "$wf") x one file:// client: the floor for the storm ratio"
