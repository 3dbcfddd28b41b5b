#!/usr/bin/env bash
# serve.sh: warm serving, berth versus nginx serving the same store directory.
#
#   bench/proxy/serve.sh [ROUNDS]   (default 5; needs nginx-light and wrk from apt)
#
# Prints requests/s for a small .mod file at wrk -c32 and -c64 and MB/s for a
# 7 MB .zip, each round running berth, nginx and floor one after the other
# (interleaved, because this machine is noisy), then the medians, the spread
# (min-max) and the ratios to nginx (targets: .mod >= 0.85, .zip >= 0.95).
#
# floor (bench/proxy/floor) is a bare net/http server answering the same .mod
# bytes from memory with berth's headers: floor/nginx is the most berth/nginx
# can be while it serves with net/http.
#
# Two modes, both by default (MODES="shared pinned"):
#   shared  every process on every CPU, wrk -t2 (a proxy sharing its host);
#   pinned  wrk -t1 on CPU 0, each server on CPU 1 alone: nginx with one
#           worker, berth and floor with GOMAXPROCS 1 (Go reads the affinity),
#           as a proxy on its own machine is measured. Needs 2 CPUs.
# DUR (default 5s) is each wrk run; ZIP=0 skips the .zip runs.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-serve.XXXXXX)}
source "$(dirname "$0")/lib.sh"
need nginx nginx-light; need wrk wrk; need taskset util-linux
ROUNDS=${1:-5}
DUR=${DUR:-5s}
MODES=${MODES:-shared pinned}
ZIP=${ZIP:-1}
CONNS=${CONNS:-32 64}

build_berth
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/floor" ./bench/proxy/floor)
(cd "$ROOT" && go run ./bench/proxy/mktree -dir "$OUT/store" -zip-mb 7)
rm -f "$OUT"/mod.* "$OUT"/zip.*
MOD=/bench.test/small/@v/v1.0.0.mod
ZIPF=/bench.test/zip7mb/@v/v1.0.0.zip

PIDS=()
NGINX_PORTS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${NGINX_PORTS[@]}"; do stop_nginx "$p"; done' EXIT

# start_nginx (lib.sh) runs "nginx -c CONF -p DIR"; for the pinned mode this
# function stands in for the command: one worker, on CPU 1.
NGINX_PIN=0
nginx() {
  if [ "$NGINX_PIN" = 1 ]; then
    sed -i 's/^worker_processes auto;/worker_processes 1;/' "$2"
    taskset -c 1 "$(type -P nginx)" "$@"
  else
    command nginx "$@"
  fi
}

declare -A PORT # PORT[mode.server]
for mode in $MODES; do
  pin=()
  [ "$mode" = pinned ] && pin=(taskset -c 1)
  # A disk store serves one berth at a time: each mode has its own copy.
  store="$OUT/store.$mode"
  cp -r "$OUT/store" "$store"
  bp=$(free_port); np=$(free_port); fp=$(free_port)
  "${pin[@]}" "$OUT/berth" proxy --offline --listen "127.0.0.1:$bp" --store "$store" --log-level warn 2>"$OUT/berth.$mode.log" &
  PIDS+=($!)
  "${pin[@]}" "$OUT/floor" -listen "127.0.0.1:$fp" -file "$store$MOD" 2>"$OUT/floor.$mode.log" &
  PIDS+=($!)
  NGINX_PIN=0; [ "$mode" = pinned ] && NGINX_PIN=1
  start_nginx "$store" "$np"
  NGINX_PORTS+=("$np")
  wait_http "http://127.0.0.1:$bp/healthz"
  wait_http "http://127.0.0.1:$fp$MOD"
  PORT[$mode.berth]=$bp; PORT[$mode.nginx]=$np; PORT[$mode.floor]=$fp
  for p in $MOD $ZIPF; do
    cmp <(curl -fs "http://127.0.0.1:$bp$p") <(curl -fs "http://127.0.0.1:$np$p") || { echo "bench: berth and nginx differ on $p"; exit 1; }
  done
  cmp <(curl -fs "http://127.0.0.1:$bp$MOD") <(curl -fs "http://127.0.0.1:$fp$MOD") || { echo "bench: berth and floor differ on $MOD"; exit 1; }
  # floor must send what berth sends, bar the Date.
  diff <(curl -fsI "http://127.0.0.1:$bp$MOD" | grep -v '^Date:') <(curl -fsI "http://127.0.0.1:$fp$MOD" | grep -v '^Date:') ||
    { echo "bench: berth and floor send different headers for $MOD"; exit 1; }
done
if [[ " $MODES " == *" pinned "* ]]; then
  n=$(pgrep -P "$(cat "$OUT/nginx-${PORT[pinned.nginx]}.pid")" | wc -l)
  [ "$n" = 1 ] || { echo "bench: pinned nginx has $n workers, want 1"; exit 1; }
fi

wrkrun() { # mode conns url
  if [ "$1" = pinned ]; then taskset -c 0 wrk -t1 -c"$2" -d"$DUR" "$3"; else wrk -t2 -c"$2" -d"$DUR" "$3"; fi
}
rps() { wrkrun "$@" | awk '/^Requests\/sec/ {print $2}'; }
mbps() { # wrk's Transfer/sec, in MB/s
  wrkrun "$@" | awk '/^Transfer\/sec/ {v=$2; u=substr(v,length(v)-1); n=substr(v,1,length(v)-2);
    if (u=="GB") n*=1024; else if (u=="KB") n/=1024; print n}'
}

for i in $(seq 1 "$ROUNDS"); do
  line="round $i:"
  for mode in $MODES; do
    for c in $CONNS; do
      line+=" $mode -c$c"
      for s in berth nginx floor; do
        v=$(rps "$mode" "$c" "http://127.0.0.1:${PORT[$mode.$s]}$MOD")
        echo "$v" >>"$OUT/mod.$mode.$c.$s"
        line+=" $s $v"
      done
      line+=";"
    done
    if [ "$ZIP" = 1 ]; then
      for s in berth nginx; do
        v=$(mbps "$mode" 8 "http://127.0.0.1:${PORT[$mode.$s]}$ZIPF")
        echo "$v" >>"$OUT/zip.$mode.$s"
        line+=" zip MB/s $s $v"
      done
      line+=";"
    fi
  done
  echo "$line"
done

spread() { sort -g "$1" | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }
echo
for mode in $MODES; do
  for c in $CONNS; do
    b=$(median <"$OUT/mod.$mode.$c.berth"); n=$(median <"$OUT/mod.$mode.$c.nginx"); f=$(median <"$OUT/mod.$mode.$c.floor")
    echo "warm .mod $mode -c$c (median of $ROUNDS, ${DUR} each): berth $b req/s ($(spread "$OUT/mod.$mode.$c.berth")), nginx $n ($(spread "$OUT/mod.$mode.$c.nginx")), floor $f ($(spread "$OUT/mod.$mode.$c.floor"));" \
         "berth/nginx $(ratio "$b" "$n") (target >= 0.85), floor/nginx $(ratio "$f" "$n"), berth/floor $(ratio "$b" "$f")"
  done
  if [ "$ZIP" = 1 ]; then
    b=$(median <"$OUT/zip.$mode.berth"); n=$(median <"$OUT/zip.$mode.nginx")
    echo "warm 7 MB .zip $mode -c8 (median of $ROUNDS): berth $b MB/s ($(spread "$OUT/zip.$mode.berth")), nginx $n ($(spread "$OUT/zip.$mode.nginx")); berth/nginx $(ratio "$b" "$n") (target >= 0.95)"
  fi
done
# Per-round ratios: each pair ran seconds apart, so these show the noise the medians hide.
for mode in $MODES; do
  for c in $CONNS; do
    echo "per-round berth/nginx $mode -c$c: $(paste -d' ' "$OUT/mod.$mode.$c.berth" "$OUT/mod.$mode.$c.nginx" | awk '{printf "%.2f ", $1/$2}')"
  done
done
echo "(raw figures in $OUT)"
