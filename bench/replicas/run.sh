#!/usr/bin/env bash
# run.sh: berth as a replicated service (issue 14), all on loopback:
#
#   bench/replicas/run.sh [ARGS]   (ARGS go to bench/replicas: -rounds 5 -wrk-rounds 8 -dur 5s ...)
#
# 1. go run ./bench/replicas: MinIO with a bucket, Debian's redis-server, three
#    berth replicas (--store s3://...?endpoint=..., --lease redis://...),
#    Debian's nginx round robin in front and a counting fixture upstream:
#    8 cold `go mod download all` clients at once (upstream fetches per file,
#    target <= 1.05; go mod verify; a control round without --lease), then
#    warm .mod through nginx with one replica vs three (replica CPU per
#    request and the scaling it implies, target >= 2.5; the raw req/s pinned
#    with taskset).
# 2. go run ./bench/s3: a warm file from the S3 store, local cache cold (target:
#    at most one store round trip over the disk store) and warm (within 5%).
#
# Needs redis-server, nginx-light, wrk (apt) and MinIO: $BERTH_MINIO, default
# $HOME/.cache/berth-ci/bin/minio, as ./test.sh builds it; when it is still
# being built this waits for it (MINIO_WAIT seconds, default 1800).
# versitygw ($BERTH_VERSITYGW, default beside MinIO) is measured by bench/s3
# too when present. Every server started is stopped on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mktemp -d /tmp/berth-bench-replicas.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

BERTH_MINIO=${BERTH_MINIO:-$HOME/.cache/berth-ci/bin/minio}
export BERTH_MINIO
if [ -z "${BERTH_VERSITYGW:-}" ] && [ -x "$(dirname "$BERTH_MINIO")/versitygw" ]; then
  BERTH_VERSITYGW="$(dirname "$BERTH_MINIO")/versitygw"
  export BERTH_VERSITYGW
fi

# A binary that runs is a finished build (go install writes it in one rename,
# but a copy across file systems is not atomic).
waited=0
until [ -x "$BERTH_MINIO" ] && "$BERTH_MINIO" --version >/dev/null 2>&1; do
  [ "$waited" = 0 ] && echo "bench/replicas: waiting for MinIO at $BERTH_MINIO (still being built?)"
  waited=$((waited + 5))
  if [ "$waited" -gt "${MINIO_WAIT:-1800}" ]; then
    echo "bench/replicas: no MinIO at $BERTH_MINIO after ${MINIO_WAIT:-1800}s: run ./test.sh, which builds it, or set BERTH_MINIO"
    exit 2
  fi
  sleep 5
done

cd "$ROOT"
CGO_ENABLED=0 go build -o "$OUT/berth" ./cmd/berth
go run ./bench/replicas -berth "$OUT/berth" "$@"
echo
echo "== go run ./bench/s3 (warm file from the S3 store vs the disk store)"
go run ./bench/s3
