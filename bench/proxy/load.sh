#!/usr/bin/env bash
# load.sh: berth under load (issue: verified, crash-safe, offline-ready).
#
#   bench/proxy/load.sh        (needs nginx-light and wrk from apt; about 1 minute)
#
# 1. 1000 concurrent connections on warm files for 30 s: errors (must be 0) and
#    berth's RSS at the start, middle and end (must stay flat).
# 2. A cold storm: 200 distinct module versions, each requested (.info, .mod,
#    .zip) by 8 clients at once in shuffled order, through a cold berth whose
#    upstream is nginx serving the tree: upstream fetches per file (must be 1).
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-load.XXXXXX)}
source "$(dirname "$0")/lib.sh"
need nginx nginx-light; need wrk wrk
ulimit -n 65536 2>/dev/null || true
build_berth
(cd "$ROOT" && go run ./bench/proxy/mktree -dir "$OUT/tree" -n 200)
NP=$(free_port); BP=$(free_port)
NGINX_ACCESS_LOG="$OUT/access.log" start_nginx "$OUT/tree" "$NP"
"$OUT/berth" proxy --listen "127.0.0.1:$BP" --store "$OUT/store" --upstream "http://127.0.0.1:$NP" --sumdb off --log-level warn 2>"$OUT/berth.log" &
BPID=$!
trap 'kill $BPID 2>/dev/null; stop_nginx $NP' EXIT
wait_http "http://127.0.0.1:$BP/healthz"
rss() { awk '/VmRSS/ {printf "%d", $2/1024}' /proc/$BPID/status; }

# --- cold storm first (the store is empty) ---
: >"$OUT/urls"
for i in $(seq 0 199); do
  for ext in info mod zip; do echo "http://127.0.0.1:$BP/bench.test/m$i/@v/v1.0.0.$ext" >>"$OUT/urls"; done
done
t0=$(date +%s.%N)
for c in 1 2 3 4 5 6 7 8; do
  (shuf "$OUT/urls" | xargs -P 16 -n 1 curl -fs -o /dev/null -w '%{http_code}\n' >"$OUT/storm.$c") &
done
wait $(jobs -p | grep -v "^$BPID$") 2>/dev/null || true
storm_t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b-a }')
ok=$(cat "$OUT"/storm.* | grep -c '^200$' || true)
total=$(cat "$OUT"/storm.* | wc -l)
zipf=$(grep -c '\.zip HTTP' "$OUT/access.log" || true)
maxper=$(grep -o 'GET [^ ]*' "$OUT/access.log" | sort | uniq -c | sort -rn | head -1 | awk '{print $1}')
echo "cold storm: 8 clients x 600 files (200 module versions) in ${storm_t}s: $ok/$total answers 200;" \
     "upstream fetched $zipf zips for 200 versions, at most $maxper fetch(es) of any one file (target 1)"

# --- 1000 connections on warm files for 30 s ---
cat >"$OUT/paths.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local i = n % 200
  local ext = ({"info", "mod", "zip"})[(n % 3) + 1]
  return wrk.format("GET", "/bench.test/m" .. i .. "/@v/v1.0.0." .. ext)
end
LUA
r0=$(rss)
wrk -t2 -c1000 -d30s --timeout 10s -s "$OUT/paths.lua" "http://127.0.0.1:$BP" >"$OUT/wrk.txt" &
WPID=$!
sleep 15; r1=$(rss)
wait $WPID
r2=$(rss)
rps=$(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk.txt")
errs=$(awk '/Socket errors/ {print}' "$OUT/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$OUT/wrk.txt")
echo "warm: 1000 connections for 30 s: $rps req/s; socket errors: ${errs:-none}; non-2xx: ${non2xx:-0}"
echo "berth RSS (MB): start $r0, at 15 s $r1, end $r2"
