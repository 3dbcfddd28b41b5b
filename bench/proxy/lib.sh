# Shared helpers for the proxy benchmarks. Source it; it needs $OUT set.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 is required (apt-get install $2)"; exit 2; }; }

build_berth() {
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/berth" ./cmd/berth)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench: $1 did not come up"; return 1
}

# start_nginx DIR PORT: serve DIR read-only on 127.0.0.1:PORT (sendfile, no access log).
start_nginx() {
  local dir=$1 port=$2 conf="$OUT/nginx-$2.conf"
  cat >"$conf" <<NGX
worker_processes auto;
$( [ "$(id -u)" = 0 ] && echo 'user root;' )
pid $OUT/nginx-$2.pid;
error_log $OUT/nginx-$2.err warn;
events { worker_connections 4096; }
http {
  access_log ${NGINX_ACCESS_LOG:-off};
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  types { application/zip zip; application/json info; text/plain mod; }
  default_type text/plain;
  client_body_temp_path $OUT/nginx-tmp; proxy_temp_path $OUT/nginx-tmp;
  fastcgi_temp_path $OUT/nginx-tmp; uwsgi_temp_path $OUT/nginx-tmp; scgi_temp_path $OUT/nginx-tmp;
  server { listen 127.0.0.1:$port; root $dir; }
}
NGX
  mkdir -p "$OUT/nginx-tmp"
  nginx -c "$conf" -p "$OUT"
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.1; done
}

stop_nginx() { [ -f "$OUT/nginx-$1.pid" ] && kill "$(cat "$OUT/nginx-$1.pid")" 2>/dev/null || true; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }
