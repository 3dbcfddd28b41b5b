// Package dockertest proves berth in real Docker containers: the berth image
// (built by scripts/image.sh as the README says, FROM scratch from a
// host-built static binary, so nothing is pulled; Dockerfile.scratch is
// checked to be the Dockerfile's final stage); the doctor naming the fault
// first on real Docker networks (default bridge by address and by name,
// user-defined network, --network none, --dns at a nameserver that drops port
// 53, an image without CA certificates, HTTPS_PROXY at a stopped proxy, a
// service bound to 127.0.0.1); a Go toolchain container downloading a
// generated module graph through a berth container by name with the checksum
// database through berth, then again from berth's store alone; the berth
// container's HEALTHCHECK and clean stop; and the doctor run in a running
// container as docs/docker.md tells users to.
//
// The tests are behind the build tag "docker" (and run on Linux only); they
// skip when no Docker daemon answers:
//
//	go test -race -tags docker -count=1 ./dockertest/
//
// Every container, network, volume and image a test creates is named
// berth-test-<run>-<what>, labelled dev.berth.test.pid=<test process>, and
// removed by t.Cleanup even when the test fails; TestMain also removes
// leftovers of test processes that are no longer running.
package dockertest
