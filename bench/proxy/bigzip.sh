#!/usr/bin/env bash
# bigzip.sh: one cold large zip (a Go toolchain, about 70 MB) through a cold,
# verifying berth versus straight from the upstream, interleaved, medians:
#
#   bench/proxy/bigzip.sh [ROUNDS]        (default 5; target berth/direct <= 1.10)
#   PIN=1 bench/proxy/bigzip.sh           client on core 0, berth on core 1
#   DELAY=40ms bench/proxy/bigzip.sh      both through bench/proxy/delay
#   RATE=20000000 bench/proxy/bigzip.sh   both through a link of 20 MB/s
#
# berth streams the zip to the client as it arrives, hashes it as it arrives,
# and holds back only its last 64 KiB until the hash and the checksum-database
# lookup agree; so the cost over direct is that tail's wait.
# It talks to the real upstream (the first entry of `go env GOPROXY`, or
# $BERTH_BENCH_UPSTREAM); a benchmark you run by hand, never part of CI.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-bigzip.XXXXXX)}
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
UP=${BERTH_BENCH_UPSTREAM:-$(go env GOPROXY | sed 's/[,|].*//')}
case "$UP" in http*) ;; *) echo "bench: first GOPROXY entry $UP is not a proxy URL; set BERTH_BENCH_UPSTREAM"; exit 2;; esac
ZIP=${ZIP:-/golang.org/toolchain/@v/v0.0.1-$(go env GOVERSION).linux-amd64.zip}
curl -fsI -o /dev/null --max-time 10 "$UP$ZIP" || { echo "bench: $UP$ZIP not reachable; skipping"; exit 0; }
build_berth
DPID=
if [ -n "${DELAY:-}${RATE:-}" ]; then
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/delay" ./bench/proxy/delay)
  DP=$(free_port)
  "$OUT/delay" -listen "127.0.0.1:$DP" -upstream "$UP" -delay "${DELAY:-0s}" -rate "${RATE:-0}" 2>>"$OUT/delay.log" &
  DPID=$!; UP="http://127.0.0.1:$DP"; wait_http "$UP/golang.org/x/mod/@v/list"
fi
CLIENT=(); SERVER=()
if [ -n "${PIN:-}" ]; then need taskset util-linux; CLIENT=(taskset -c 0); SERVER=(taskset -c 1); fi
P=$(free_port); BPID=
trap '[ -n "$BPID" ] && kill $BPID 2>/dev/null; [ -n "$DPID" ] && kill $DPID 2>/dev/null' EXIT
get() { "${CLIENT[@]}" curl -fs -o "$OUT/got.zip" -w '%{time_total}\n' "$1"; }
: >"$OUT/t.direct"; : >"$OUT/t.berth"
for i in $(seq 1 "$ROUNDS"); do
  get "$UP$ZIP" >>"$OUT/t.direct"
  want=$(sha256sum <"$OUT/got.zip")
  rm -rf "$OUT/store"
  "${SERVER[@]}" "$OUT/berth" proxy --listen "127.0.0.1:$P" --store "$OUT/store" --upstream "$UP" --log-level warn 2>>"$OUT/berth.log" &
  BPID=$!; wait_http "http://127.0.0.1:$P/healthz"
  # Let the checksum tree warm-up finish, as on a running proxy.
  sleep 1
  get "http://127.0.0.1:$P$ZIP" >>"$OUT/t.berth"
  [ "$(sha256sum <"$OUT/got.zip")" = "$want" ] || { echo "bench: berth's zip differs"; exit 1; }
  kill "$BPID"; wait "$BPID" 2>/dev/null; BPID=
  echo "round $i: direct $(tail -1 "$OUT/t.direct")s berth $(tail -1 "$OUT/t.berth")s"
done
d=$(median <"$OUT/t.direct"); b=$(median <"$OUT/t.berth")
size=$(stat -c %s "$OUT/got.zip")
echo
echo "cold $ZIP ($((size >> 20)) MiB), median of $ROUNDS: berth ${b}s, direct ${d}s, ratio $(ratio "$b" "$d") (target <= 1.10)"
