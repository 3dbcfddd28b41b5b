package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/doctor"
)

const doctorAbout = `
Usage: berth doctor [flags] [TARGET...]

Find why this container cannot reach the network, the way a Go program sees it,
and print the fix. TARGET is a URL (https://proxy.corp.example/) or host:port
(db:5432). With no TARGET the targets are this environment's Go module path:
each GOPROXY entry (from the environment, else "go env" when a go binary exists)
and the checksum database through it.

What it checks:
  facts   OS and container markers, cgroup CPU/memory limits beside GOMAXPROCS
          and GOMEMLIMIT, /etc/resolv.conf and nsswitch.conf read with Go's own
          resolver rules, /etc/hosts, the CA files crypto/x509 loads,
          HTTP(S)_PROXY/NO_PROXY as net/http applies them, GOPROXY, GOSUMDB,
          GOPRIVATE and friends, the netrc machines GOAUTH would use, TCP
          listeners (/proc/net/tcp); on Windows the adapters' DNS servers
          (GetAdaptersAddresses), the certificate store and the WinINet/WinHTTP
          proxy settings Go ignores
  probes  in parallel under one deadline: DNS to each nameserver, Go's resolver
          (names tried via the search list counted), TCP per address, TLS with
          the chain kept and what the server asks of the client, HTTP with
          phase timings (and the other path: direct, or through the proxy that
          NO_PROXY skipped), the GOPROXY protocol as the go command speaks it
          (redirects, netrc credentials; an HTML page, a JSON document, a 401
          or a sign-in redirect is a finding) and the checksum database
  report  findings with stable ids, root cause first, cause, fix and evidence;
          a path diagram and a timing waterfall per target

It is one static binary: copy it into the broken container, even FROM scratch.

Examples:
  docker cp berth mycontainer:/berth && docker exec mycontainer /berth doctor
  docker run --rm --network container:myapp -v $PWD/berth:/berth alpine /berth doctor --listen :8080
  kubectl debug -it mypod --image=busybox --target=app -- sh   # then copy berth in and run it
  kubectl cp berth mypod:/tmp/berth && kubectl exec mypod -- /tmp/berth doctor --json
  berth doctor https://proxy.corp.example/ db.internal:5432
  GOPROXY=https://goproxy.corp.example berth doctor --timeout 10s

Exit codes: 0 no finding at severity error, 1 at least one error finding,
2 usage error (bad flag, target or listen address).
The JSON schema (--json) is documented in docs/doctor-json.md.
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("doctor", doctorAbout, stdout, stderr)
	asJSON := f.Bool("json", false, "print the report as JSON (schema in docs/doctor-json.md) instead of text")
	timeout := f.Duration("timeout", 5*time.Second, "deadline for all probes together; the run ends within it")
	module := f.String("module", "", "comma-separated module paths the build needs, checked against GOPRIVATE\n(default: the module and requirements of ./go.mod)")
	probeMod := f.String("probe-module", "golang.org/x/text", "module whose version list is fetched through each GOPROXY entry")
	var listen listFlag
	f.fs.Var(&listen, "listen", "address a service must accept outside connections on, e.g. :8080 (repeatable);\nfails when it listens on 127.0.0.1/::1 only or not at all")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	// Flags may follow targets: berth doctor https://x --json.
	var targets []string
	for rest := f.Args(); len(rest) > 0; rest = f.Args() {
		targets = append(targets, rest[0])
		if code, ok := f.Parse(rest[1:]); !ok {
			return code
		}
	}
	if *timeout <= 0 {
		return f.Usagef("--timeout=%s: want a positive duration such as 5s", *timeout)
	}
	opts := doctor.Options{Targets: targets, Listen: listen, Timeout: *timeout, ProbeModule: *probeMod, GoCommand: true}
	if *module != "" {
		for _, m := range strings.Split(*module, ",") {
			if m = strings.TrimSpace(m); m != "" {
				opts.Modules = append(opts.Modules, m)
			}
		}
	}
	rep, err := doctor.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "berth doctor: %v\n", err)
		if errors.Is(err, doctor.ErrUsage) {
			return 2
		}
		return 1
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth doctor: writing the report: %v\n", err)
		return 1
	}
	if !rep.Healthy() {
		return 1
	}
	return 0
}
