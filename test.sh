#!/usr/bin/env bash
# test.sh: everything CI checks, in one command. Run it from the repository root:
#
#     ./test.sh
#
# It installs what the tests need when it is missing (as root, with apt-get:
# iproute2 and iptables for the doctor's fault lab, util-linux for nsenter), then
# runs gofmt, go vet, staticcheck, the cross-builds, all tests with -race, and
# the Docker suite. Fault-lab, disk-full and Docker tests need root (and a Docker
# daemon) and skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "== note: ${need_apt[*]} missing and not root: fault-lab tests will skip"
  fi
fi

export PATH="$(go env GOPATH)/bin:$PATH"
if ! command -v staticcheck >/dev/null 2>&1; then
  echo "== installing staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
staticcheck ./...

echo "== cross-builds (static, CGO_ENABLED=0)"
for target in linux/amd64 linux/arm64 windows/amd64 darwin/arm64; do
  CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build -o /dev/null ./... && echo "   $target ok"
done

# --- S3-compatible servers for store/s3's tests and bench/s3 (issue 14) -----
# MinIO and versitygw, built from their Go modules once into a cache directory
# CI keeps between runs (BERTH_CI_CACHE), rebuilt only when missing or of
# another version; store/s3 finds them through BERTH_MINIO and BERTH_VERSITYGW.
s3bin="${BERTH_CI_CACHE:-$HOME/.cache/berth-ci}/bin"
mkdir -p "$s3bin"
for s3srv in "minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c" \
             "versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0"; do
  s3name=${s3srv%% *} s3pkg=${s3srv#* }
  s3have=$(go version -m "$s3bin/$s3name" 2>/dev/null | awk '$1 == "mod" { print $3; exit }' || true)
  if [ "$s3have" != "${s3pkg##*@}" ]; then
    echo "== building $s3name (${s3pkg}) into $s3bin, once (about two minutes)"
    GOBIN="$s3bin" go install "$s3pkg"
  fi
done
export BERTH_MINIO="$s3bin/minio" BERTH_VERSITYGW="$s3bin/versitygw"
# --- end of the S3 servers block -------------------------------------------

# --- redis-server and nginx: the lease and replica tests (issue 14) ---------
# modproxy/lease, the cache's TestLease* and cmd/berth's TestProxyLeaseReplicas
# start Debian's redis-server on loopback themselves (no service is used);
# cmd/berth's TestReplicasBehindNginx also starts Debian's nginx in front of
# three berth processes. Without them (not root, no apt-get) those tests skip
# and say why.
lease_apt=()
command -v redis-server >/dev/null 2>&1 || lease_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || lease_apt+=(nginx)
if [ ${#lease_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${lease_apt[*]} (the lease and replica tests)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${lease_apt[@]}" >/dev/null; } \
      || echo "== note: ${lease_apt[*]} could not be installed: the lease and replica tests that need them will skip"
  else
    echo "== note: ${lease_apt[*]} missing and not root: the lease and replica tests that need them will skip"
  fi
fi
# --- end of the redis and nginx block ---------------------------------------

# --- wine: the doctor's Windows runs in the fault lab (issue 13) ------------
# berth.exe runs under Debian's wine64 inside the lab's namespaces
# (internal/lab TestWineLab). Go 1.24+ needs bcryptprimitives.dll's ProcessPrng,
# which wine 8.0 lacks: the stub in internal/winstub is built with mingw into
# the CI cache and found through BERTH_WINE_STUB. Without wine (not root, no
# apt-get) TestWineLab skips and says why.
winedir="${BERTH_CI_CACHE:-$HOME/.cache/berth-ci}/wine"
if { [ ! -x /usr/lib/wine/wine64 ] || ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; } \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing wine64 and gcc-mingw-w64-x86-64 (the doctor's Windows runs)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wine64 gcc-mingw-w64-x86-64 >/dev/null; } \
    || echo "== note: wine64/mingw could not be installed: the wine runs will skip"
fi
if command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  mkdir -p "$winedir"
  if [ ! -f "$winedir/bcryptprimitives.dll" ] || [ internal/winstub/bcryptprimitives.c -nt "$winedir/bcryptprimitives.dll" ]; then
    echo "== building the stub bcryptprimitives.dll into $winedir"
    x86_64-w64-mingw32-gcc -shared -O2 -o "$winedir/bcryptprimitives.dll" \
      internal/winstub/bcryptprimitives.c internal/winstub/bcryptprimitives.def -ladvapi32
  fi
  export BERTH_WINE_STUB="$winedir/bcryptprimitives.dll"
else
  echo "== note: no x86_64-w64-mingw32-gcc: the doctor's wine runs (TestWineLab) will skip"
fi
# --- end of the wine block ---------------------------------------------------

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== docker suite (real containers; skips when no Docker daemon answers)"
go vet -tags docker ./dockertest/...
staticcheck -tags docker ./dockertest/...
go test -race -tags docker -count=1 -timeout 10m ./dockertest/
