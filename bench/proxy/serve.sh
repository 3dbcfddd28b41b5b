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
# Besides requests/s, each run reads the server's CPU time (utime+stime of all
# its processes) and prints CPU microseconds per request: on a machine others
# are loading, throughput follows the CPU share a process gets, while the CPU
# it spends per request moves much less, so nginx-us/berth-us is the steadier
# ratio (a Go server's still rises under heavy contention: it batches less).
# DUR (default 5s) is each wrk run; CONNS (default "32 64") the wrk -c values; ZIP=0 skips the .zip runs; BASE=path/to/berth
# adds another berth binary (say, a build of the previous commit) to each round
# of .mod runs, for a before/after under the same noise.
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-serve.XXXXXX)}
source "$(dirname "$0")/lib.sh"
need nginx nginx-light; need wrk wrk; need taskset util-linux
ROUNDS=${1:-5}
DUR=${DUR:-5s}
MODES=${MODES:-shared pinned}
ZIP=${ZIP:-1}
CONNS=${CONNS:-32 64}
SERVERS="berth nginx floor${BASE:+ base}"

build_berth
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/floor" ./bench/proxy/floor)
(cd "$ROOT" && go run ./bench/proxy/mktree -dir "$OUT/store" -zip-mb 7)
rm -f "$OUT"/mod.* "$OUT"/zip.* "$OUT"/cpu.*
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

declare -A PORT SPID # PORT[mode.server], SPID[mode.server] (nginx: the master)
for mode in $MODES; do
  pin=()
  [ "$mode" = pinned ] && pin=(taskset -c 1)
  # A disk store serves one berth at a time: each mode has its own copy.
  store="$OUT/store.$mode"
  cp -r "$OUT/store" "$store"
  bp=$(free_port); np=$(free_port); fp=$(free_port)
  "${pin[@]}" "$OUT/berth" proxy --offline --listen "127.0.0.1:$bp" --store "$store" --log-level warn 2>"$OUT/berth.$mode.log" &
  PIDS+=($!); SPID[$mode.berth]=$!
  if [ -n "${BASE:-}" ]; then
    cp -r "$OUT/store" "$store.base"
    bb=$(free_port)
    "${pin[@]}" "$BASE" proxy --offline --listen "127.0.0.1:$bb" --store "$store.base" --log-level warn 2>"$OUT/base.$mode.log" &
    PIDS+=($!); SPID[$mode.base]=$!
    wait_http "http://127.0.0.1:$bb/healthz"
    PORT[$mode.base]=$bb
  fi
  "${pin[@]}" "$OUT/floor" -listen "127.0.0.1:$fp" -file "$store$MOD" 2>"$OUT/floor.$mode.log" &
  PIDS+=($!); SPID[$mode.floor]=$!
  NGINX_PIN=0; [ "$mode" = pinned ] && NGINX_PIN=1
  start_nginx "$store" "$np"
  NGINX_PORTS+=("$np"); SPID[$mode.nginx]=$(cat "$OUT/nginx-$np.pid")
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
# cputicks PID: the CPU time of PID and its children processes (nginx's
# workers), in clock ticks.
cputicks() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
rps() { # mode conns server: prints "req/s cpu-us-per-request"
  local t0 t1 out
  t0=$(cputicks "${SPID[$1.$3]}")
  out=$(wrkrun "$1" "$2" "http://127.0.0.1:${PORT[$1.$3]}$MOD")
  t1=$(cputicks "${SPID[$1.$3]}")
  awk -v dt=$((t1 - t0)) -v hz="$HZ" '/requests in/ {n=$1} /^Requests\/sec/ {r=$2}
    END {printf "%s %.2f\n", r, dt/hz*1e6/n}' <<<"$out"
}
mbps() { # wrk's Transfer/sec, in MB/s
  wrkrun "$@" | awk '/^Transfer\/sec/ {v=$2; u=substr(v,length(v)-1); n=substr(v,1,length(v)-2);
    if (u=="GB") n*=1024; else if (u=="KB") n/=1024; print n}'
}

for i in $(seq 1 "$ROUNDS"); do
  line="round $i:"
  for mode in $MODES; do
    for c in $CONNS; do
      line+=" $mode -c$c"
      for s in $SERVERS; do
        read -r v u < <(rps "$mode" "$c" "$s")
        echo "$v" >>"$OUT/mod.$mode.$c.$s"
        echo "$u" >>"$OUT/cpu.$mode.$c.$s"
        line+=" $s $v (${u}us)"
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
fig() { echo "$(median <"$1") ($(spread "$1"))"; } # median (min-max)
r() { ratio "$(median <"$1")" "$(median <"$2")"; }    # ratio of the medians
perround() { # A B: A/B of each round, then their median
  paste -d' ' "$1" "$2" | awk '{printf "%.2f ", $1/$2}'
  echo "(median $(paste -d' ' "$1" "$2" | awk '{print $1/$2}' | median | xargs printf '%.3f'))"
}
echo
for mode in $MODES; do
  for c in $CONNS; do
    m="$OUT/mod.$mode.$c"; u="$OUT/cpu.$mode.$c"
    echo "warm .mod, $mode, wrk -c$c, $ROUNDS rounds of $DUR: median (min-max)"
    line="  req/s:      "
    for s in $SERVERS; do line+=" $s $(fig "$m.$s")"; done
    echo "$line"
    line="  berth/nginx $(r "$m.berth" "$m.nginx") (target >= 0.85), floor/nginx $(r "$m.floor" "$m.nginx"), berth/floor $(r "$m.berth" "$m.floor")"
    [ -n "${BASE:-}" ] && line+=", base/nginx $(r "$m.base" "$m.nginx"), berth/base $(r "$m.berth" "$m.base")"
    echo "$line"
    echo "  per round berth/nginx: $(perround "$m.berth" "$m.nginx")"
    echo "  per round floor/nginx: $(perround "$m.floor" "$m.nginx")"
    [ -n "${BASE:-}" ] && echo "  per round berth/base:  $(perround "$m.berth" "$m.base")"
    line="  CPU us/req: "
    for s in $SERVERS; do line+=" $s $(fig "$u.$s")"; done
    echo "$line"
    line="  CPU nginx/berth $(r "$u.nginx" "$u.berth"), nginx/floor $(r "$u.nginx" "$u.floor")"
    [ -n "${BASE:-}" ] && line+=", nginx/base $(r "$u.nginx" "$u.base")"
    echo "$line"
  done
  if [ "$ZIP" = 1 ]; then
    b=$(median <"$OUT/zip.$mode.berth"); n=$(median <"$OUT/zip.$mode.nginx")
    echo "warm 7 MB .zip, $mode, wrk -c8: berth $(fig "$OUT/zip.$mode.berth") MB/s, nginx $(fig "$OUT/zip.$mode.nginx"); berth/nginx $(ratio "$b" "$n") (target >= 0.95)"
  fi
done
echo "(raw figures in $OUT)"
