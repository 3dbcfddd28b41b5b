# berth in a container: a static binary in a scratch image.
#
#   docker build -t berth .
#   docker run -d --name berth -p 3000:3000 -v berth-store:/store \
#       -e BERTH_UPSTREAM="$(go env GOPROXY)" -e BERTH_SUMDB="$(go env GOSUMDB)" berth
#
# The image holds /berth, a CA bundle, /etc/passwd with the non-root user
# "nonroot" (65532) and the store directory /store (a volume). The default
# command is "berth proxy" listening on :3000. A scratch image has no go
# command to ask for your configuration, so set BERTH_UPSTREAM (or GOPROXY),
# the upstream module proxy list, and BERTH_SUMDB (or GOSUMDB), the checksum
# database every fetched file is verified against before it is stored (without
# it berth stores files unverified and says so in its log).
# The same binary runs the doctor in this image:
#
#   docker run --rm --network container:berth --entrypoint /berth berth doctor
#
# Build through a module proxy (berth itself, for example) with
#   docker build --build-arg GOPROXY=http://<berth-host>:3000 -t berth .
#
# No registry reachable (the golang image cannot be pulled)? scripts/image.sh
# builds the same image with no base image: the static binary built on this
# host, copied with the host's CA bundle into Dockerfile.scratch, which is
# this file's final stage reading from the build context.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
ARG GOPROXY
ARG GOSUMDB
ARG VERSION=""
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN mkdir -p /rootfs/etc/ssl/certs /store-skel \
 && go build -ldflags="-s -w -X main.version=${VERSION}" -o /rootfs/berth ./cmd/berth \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

# The final stage. dockertest builds exactly these lines (with each
# COPY --from=build taken from a context laid out like /rootfs and /store-skel
# above), so keep every COPY in the form "COPY --from=build [--chown=...] SRC DST".
FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /store-skel/ /store/
USER 65532:65532
# On SIGTERM berth fails /readyz for BERTH_DRAIN_DELAY, then lets running
# requests and upstream fetches finish within BERTH_SHUTDOWN_TIMEOUT, and
# cancels what is left (nothing partial is kept). 1s + 3s stays inside docker
# stop's default 10 s grace period, so berth is never killed mid-write. Raise them together with the grace period: docker run
# --stop-timeout, compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds (see examples/).
ENV BERTH_LISTEN=:3000 BERTH_STORE=/store BERTH_DRAIN_DELAY=1s BERTH_SHUTDOWN_TIMEOUT=3s
EXPOSE 3000
VOLUME ["/store"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/berth", "healthcheck", "--timeout", "4s", "http://127.0.0.1:3000/readyz"]
ENTRYPOINT ["/berth"]
CMD ["proxy"]
