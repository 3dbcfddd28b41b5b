#!/bin/sh
# Build the berth image with no base image and no registry: the static
# binary is built on this host (CGO_ENABLED=0 go build), and copied with the
# host's CA bundle and passwd/group entries for the non-root user into the
# FROM scratch image of Dockerfile.scratch, the final stage of ./Dockerfile.
# Use it where "docker build -t berth ." cannot pull the golang image.
#
#   scripts/image.sh                     # docker build -t berth
#   scripts/image.sh -t berth:v1.2.3     # arguments go to docker build
#
# Environment: SSL_CERT_FILE, the CA bundle to copy (default: the first of
# the usual system paths); GOARCH, the image's architecture (default: this
# host's); VERSION, the version berth reports (default: none, as in
# ./Dockerfile).
set -eu

cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- -t berth

ca=${SSL_CERT_FILE:-}
if [ -z "$ca" ]; then
	for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem /etc/ssl/ca-bundle.pem; do
		if [ -f "$f" ]; then
			ca=$f
			break
		fi
	done
fi
if [ -z "$ca" ] || [ ! -f "$ca" ]; then
	echo "scripts/image.sh: no CA bundle found (${ca:-none of /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem}): set SSL_CERT_FILE to a PEM file of the roots berth should trust" >&2
	exit 1
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/berth-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
trap 'exit 130' INT TERM

mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/store-skel"
CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH:-$(go env GOARCH)}" \
	go build -trimpath -ldflags="-s -w -X main.version=${VERSION:-}" -o "$ctx/rootfs/berth" ./cmd/berth
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"
cp Dockerfile.scratch "$ctx/Dockerfile"

docker build "$@" "$ctx"
