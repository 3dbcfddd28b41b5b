// Package netkit is the networking kit for Go services in containers, and the
// failure taxonomy shared by all of berth.
//
// The parts fit together like this:
//
//   - Classify turns any error from net, net/http, crypto/tls, crypto/x509 or an
//     HTTP proxy into a Cause (dns-timeout, refused, reset, tls-expired, ...). The
//     doctor explains causes, the module proxy and the retry policy decide with them.
//   - NewClient returns a plain *http.Client whose transport has per-phase timeouts,
//     a sized idle pool, a retry layer (safe methods only, replayable bodies,
//     jittered backoff, Retry-After, a retry budget), a circuit breaker per host,
//     Prometheus metrics and a hook for tracing wrappers.
//   - NewBalancer resolves dns:/// and srv:/// targets on an interval and spreads
//     requests over the endpoints with power-of-two-choices and outlier ejection.
//   - Health serves liveness and readiness with named, time-limited checks.
//   - Serve runs an *http.Server and shuts it down gracefully when its context
//     ends (main turns SIGTERM/SIGINT into that context with signal.NotifyContext):
//     unready first, a drain delay, Shutdown with a deadline, then Close.
package netkit
