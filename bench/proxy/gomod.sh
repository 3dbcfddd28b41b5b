#!/usr/bin/env bash
# gomod.sh: `go mod download all` of a real module graph (bench/proxy/graph,
# about 150 modules) through berth, compared in one run with the physical limits:
#
#   cold:  through a cold berth        vs  straight from the upstream      (target <= 1.05)
#   warm:  through a warm berth        vs  GOPROXY=file:// of berth's store (target <= 1.05)
#   storm: 8 cold clients at once through one cold berth: upstream fetches per
#          file (target 1) and wall time vs one cold client (target <= 1.2)
#
#   bench/proxy/gomod.sh [ROUNDS]      (default 3; runs are interleaved A B A B)
#
# This talks to the real upstream: the first entry of `go env GOPROXY` (or
# $BERTH_BENCH_UPSTREAM). It is a benchmark you run by hand, never part of CI.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-gomod.XXXXXX)}
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
UP=${BERTH_BENCH_UPSTREAM:-$(go env GOPROXY | sed 's/[,|].*//')}
case "$UP" in http*) ;; *) echo "bench: first GOPROXY entry $UP is not a proxy URL; set BERTH_BENCH_UPSTREAM"; exit 2;; esac
curl -fs -o /dev/null --max-time 10 "$UP/golang.org/x/mod/@v/list" || { echo "bench: upstream not reachable; skipping"; exit 0; }
build_berth
GRAPH="$ROOT/bench/proxy/graph"
# The go command extracts every zip into its module cache (about 600 MB of small
# files for this graph); that disk I/O is the same for every variant and only
# adds noise, so module caches live in memory (tmpfs) when possible.
MC=$(mktemp -d "${MC_BASE:-/dev/shm}/berth-bench-mc.XXXXXX" 2>/dev/null || mktemp -d "$OUT/mc-base.XXXXXX")
NMODS=$(cd "$GRAPH" && go list -m all | wc -l)

now() { date +%s.%N; }
# download PROXY MODCACHE -> seconds on stdout
download() {
  local dir; dir=$(mktemp -d "$OUT/main.XXXX"); cp "$GRAPH"/go.mod "$GRAPH"/go.sum "$GRAPH"/main.go "$dir"
  local t0; t0=$(now)
  (cd "$dir" && env GOPROXY="$1" GOMODCACHE="$2" GOFLAGS=-modcacherw GONOSUMDB= GOPRIVATE= GONOPROXY= GOTOOLCHAIN=local \
     go mod download all) >"$OUT/download.log" 2>&1 || { echo "bench: go mod download through $1 failed:"; cat "$OUT/download.log"; exit 1; }
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f\n", b-a }'
  rm -rf "$dir"
}
BPID=
start_berth() { # STORE PORT
  "$OUT/berth" proxy --listen "127.0.0.1:$2" --store "$1" --upstream "$UP" --log-level warn 2>>"$OUT/berth.log" &
  BPID=$!; wait_http "http://127.0.0.1:$2/healthz"
}
stop_berth() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null; BPID=; }
trap 'stop_berth; rm -rf "$MC"' EXIT
P=$(free_port)

echo "graph: $NMODS modules; upstream: first GOPROXY entry; $ROUNDS interleaved rounds"
: >"$OUT/cold.direct"; : >"$OUT/cold.berth"; : >"$OUT/warm.file"; : >"$OUT/warm.berth"
for i in $(seq 1 "$ROUNDS"); do
  rm -rf "$MC/mc"; download "$UP" "$MC/mc" >>"$OUT/cold.direct"
  rm -rf "$MC/mc" "$OUT/store"; start_berth "$OUT/store" "$P"
  download "http://127.0.0.1:$P" "$MC/mc" >>"$OUT/cold.berth"
  # warm: same store, fresh module caches
  rm -rf "$MC/mc"; download "file://$OUT/store" "$MC/mc" >>"$OUT/warm.file"
  rm -rf "$MC/mc"; download "http://127.0.0.1:$P" "$MC/mc" >>"$OUT/warm.berth"
  stop_berth
  echo "round $i: cold direct $(tail -1 "$OUT/cold.direct")s berth $(tail -1 "$OUT/cold.berth")s;" \
       "warm file:// $(tail -1 "$OUT/warm.file")s berth $(tail -1 "$OUT/warm.berth")s"
done
cd_=$(median <"$OUT/cold.direct"); cb=$(median <"$OUT/cold.berth")
wf=$(median <"$OUT/warm.file"); wb=$(median <"$OUT/warm.berth")

# Storm: 8 cold clients at once through one cold berth.
rm -rf "$OUT/store" "$MC"/mc*; start_berth "$OUT/store" "$P"
t0=$(now)
for c in 1 2 3 4 5 6 7 8; do download "http://127.0.0.1:$P" "$MC/mc$c" >"$OUT/storm.$c" & done
wait $(jobs -p | grep -v "^$BPID$") 2>/dev/null || true
storm=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b-a }')
metrics=$(curl -fs "http://127.0.0.1:$P/metrics")
stop_berth
zips=$(find "$OUT/store" -name '*.zip' | wc -l)
mods=$(find "$OUT/store" -name '*.mod' | wc -l)
zipf=$(echo "$metrics" | awk '/^berth_proxy_upstream_fetches_total\{endpoint="zip"/ {s+=$2} END {print s+0}')
modf=$(echo "$metrics" | awk '/^berth_proxy_upstream_fetches_total\{endpoint="mod"/ {s+=$2} END {print s+0}')

echo
echo "cold go mod download all ($NMODS modules), median of $ROUNDS: berth ${cb}s, upstream directly ${cd_}s, ratio $(ratio "$cb" "$cd_") (target <= 1.05)"
echo "warm go mod download all, median of $ROUNDS: berth ${wb}s, GOPROXY=file:// ${wf}s, ratio $(ratio "$wb" "$wf") (target <= 1.05)"
echo "8 cold clients at once: ${storm}s vs one cold client through berth ${cb}s, ratio $(ratio "$storm" "$cb") (target <= 1.2)"
echo "  upstream fetches: $zipf for $zips zips, $modf for $mods .mod files (target: one per file)"
