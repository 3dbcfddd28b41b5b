#!/usr/bin/env bash
# rss.sh: peak memory of berth while 64 clients download one cold 100 MB zip at
# once (target: peak RSS under 100 MB; berth streams, it never holds a zip in
# memory), and the number of upstream fetches for it (target: 1).
#
#   bench/proxy/rss.sh          (needs nginx-light from apt; nginx is the upstream)
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-rss.XXXXXX)}
source "$(dirname "$0")/lib.sh"
need nginx nginx-light
CLIENTS=${CLIENTS:-64}
build_berth
(cd "$ROOT" && go run ./bench/proxy/mktree -dir "$OUT/upstream" -zip-mb 100)
NP=$(free_port); BP=$(free_port)
NGINX_ACCESS_LOG="$OUT/access.log" start_nginx "$OUT/upstream" "$NP"
# The generated module is in no checksum database: --sumdb off (the zip is
# still streamed with its last 64 KiB held until the zip checks pass).
"$OUT/berth" proxy --listen "127.0.0.1:$BP" --store "$OUT/store" --upstream "http://127.0.0.1:$NP" --sumdb off --log-level warn 2>"$OUT/berth.log" &
BPID=$!
trap 'kill $BPID 2>/dev/null; stop_nginx $NP' EXIT
wait_http "http://127.0.0.1:$BP/healthz"
ZIP=/bench.test/zip100mb/@v/v1.0.0.zip
want=$(sha256sum "$OUT/upstream$ZIP" | cut -d' ' -f1)
base=$(awk '/VmRSS/ {print $2}' /proc/$BPID/status)
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 "$CLIENTS"); do
  (curl -fs "http://127.0.0.1:$BP$ZIP" | sha256sum | cut -d' ' -f1 >"$OUT/sum.$i") & pids+=($!)
done
alive() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while alive; do sleep 0.1; done
t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b-a }')
peak=$(awk '/VmHWM/ {print $2}' /proc/$BPID/status)
bad=$(cat "$OUT"/sum.* | grep -vc "^$want$" || true)
fetches=$(grep -c "GET $ZIP" "$OUT/access.log" || true)
echo "$CLIENTS clients x 100 MB cold zip in ${t}s: $bad wrong bodies, $fetches upstream fetch(es) (target 1)"
echo "berth RSS: $((base/1024)) MB before, peak $((peak/1024)) MB (VmHWM; target < 100 MB)"
