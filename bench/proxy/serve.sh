#!/usr/bin/env bash
# serve.sh: warm serving, berth versus nginx serving the same store directory.
#
#   bench/proxy/serve.sh [ROUNDS]   (default 5; needs nginx-light and wrk from apt)
#
# Prints requests/s for a small .mod file and MB/s for a 7 MB .zip, each measured
# A B A B ... (berth, nginx interleaved, because this machine is noisy), the
# medians, and the ratios berth/nginx (targets: .mod >= 0.8, .zip >= 0.95).
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-serve.XXXXXX)}
source "$(dirname "$0")/lib.sh"
need nginx nginx-light; need wrk wrk
ROUNDS=${1:-5}
DUR=${DUR:-5s}

build_berth
(cd "$ROOT" && go run ./bench/proxy/mktree -dir "$OUT/store" -zip-mb 7)
BP=$(free_port); NP=$(free_port)
"$OUT/berth" proxy --offline --listen "127.0.0.1:$BP" --store "$OUT/store" --log-level warn 2>"$OUT/berth.log" &
BPID=$!
trap 'kill $BPID 2>/dev/null; stop_nginx $NP' EXIT
start_nginx "$OUT/store" "$NP"
wait_http "http://127.0.0.1:$BP/healthz"

MOD=/bench.test/small/@v/v1.0.0.mod
ZIP=/bench.test/zip7mb/@v/v1.0.0.zip
for p in $MOD $ZIP; do
  cmp <(curl -fs "http://127.0.0.1:$BP$p") <(curl -fs "http://127.0.0.1:$NP$p") || { echo "bench: berth and nginx differ on $p"; exit 1; }
done

rps() { wrk -t2 -c"$2" -d"$DUR" "$1" | awk '/^Requests\/sec/ {print $2}'; }
mbps() { # wrk's Transfer/sec, in MB/s
  wrk -t2 -c"$2" -d"$DUR" "$1" | awk '/^Transfer\/sec/ {v=$2; u=substr(v,length(v)-1); n=substr(v,1,length(v)-2);
    if (u=="GB") n*=1024; else if (u=="KB") n/=1024; print n}'
}

: >"$OUT/mod.berth"; : >"$OUT/mod.nginx"; : >"$OUT/zip.berth"; : >"$OUT/zip.nginx"
for i in $(seq 1 "$ROUNDS"); do
  rps "http://127.0.0.1:$BP$MOD" 64 >>"$OUT/mod.berth"
  rps "http://127.0.0.1:$NP$MOD" 64 >>"$OUT/mod.nginx"
  mbps "http://127.0.0.1:$BP$ZIP" 8 >>"$OUT/zip.berth"
  mbps "http://127.0.0.1:$NP$ZIP" 8 >>"$OUT/zip.nginx"
  echo "round $i: .mod req/s berth $(tail -1 "$OUT/mod.berth") nginx $(tail -1 "$OUT/mod.nginx");" \
       ".zip MB/s berth $(tail -1 "$OUT/zip.berth") nginx $(tail -1 "$OUT/zip.nginx")"
done
mb=$(median <"$OUT/mod.berth"); mn=$(median <"$OUT/mod.nginx")
zb=$(median <"$OUT/zip.berth"); zn=$(median <"$OUT/zip.nginx")
echo
echo "warm .mod (wrk -t2 -c64 -d$DUR, median of $ROUNDS): berth $mb req/s, nginx $mn req/s, ratio $(ratio "$mb" "$mn") (target >= 0.8)"
echo "warm 7 MB .zip (wrk -t2 -c8 -d$DUR, median of $ROUNDS): berth $zb MB/s, nginx $zn MB/s, ratio $(ratio "$zb" "$zn") (target >= 0.95)"
