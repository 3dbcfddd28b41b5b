package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-dev/berth/netkit"
)

const healthcheckAbout = `usage: berth healthcheck [--timeout 3s] URL

GET URL and exit 0 if the answer is 2xx, 1 otherwise (with a one-line reason
naming the cause: refused, timeout, http-status, ...), 2 on a usage error.
Made for HEALTHCHECK in images that have no shell or curl:

  HEALTHCHECK CMD ["/berth", "healthcheck", "http://127.0.0.1:8080/readyz"]`

// runHealthcheck probes a health URL for container HEALTHCHECK instructions.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("healthcheck", healthcheckAbout, stdout, stderr)
	timeout := f.Duration("timeout", 3*time.Second, "give up after this long")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if len(f.Args()) != 1 {
		return f.Usagef("want exactly one URL, such as http://127.0.0.1:3000/readyz")
	}
	target := f.Args()[0]
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil || req.URL.Host == "" || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return f.Usagef("%q is not an http or https URL", target)
	}
	// A health probe must not wait through retries, nor go through a proxy.
	client := netkit.NewClient(netkit.ClientOptions{
		Retry:               &netkit.RetryPolicy{MaxAttempts: 1},
		Proxy:               func(*http.Request) (*url.URL, error) { return nil, nil },
		DialTimeout:         *timeout,
		TLSHandshakeTimeout: *timeout,
	})
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		err = netkit.CheckStatus(resp)
	}
	if err != nil {
		c := netkit.Classify(err)
		fmt.Fprintf(stderr, "unhealthy: %s: %s (%s)\n", target, c.Kind, reason(c))
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s: %s\n", target, resp.Status)
	return 0
}

func reason(c netkit.Cause) string {
	if c.Kind == netkit.KindHTTPStatus {
		return fmt.Sprintf("status %d %s", c.Status, http.StatusText(c.Status))
	}
	return c.Err.Error()
}
