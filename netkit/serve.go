package netkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configures Serve. The zero value works.
type ServeOptions struct {
	// DrainDelay is the wait between failing readiness and calling Shutdown, so
	// load balancers and Kubernetes endpoints stop sending new requests first.
	// Default 5s when Health is set, 0 otherwise; negative means none.
	DrainDelay time.Duration
	// ShutdownTimeout bounds http.Server.Shutdown; after it, Close cuts the
	// remaining connections. Default 20s (with the drain delay, within
	// Kubernetes' default 30s grace period).
	ShutdownTimeout time.Duration
	// Health, if set, has ShuttingDown called when the shutdown begins.
	Health *Health
	// Logger receives one line per shutdown step. Default slog.Default().
	Logger *slog.Logger
}

// ErrStopNow, as the cause of Serve's context or wrapped in it (see
// context.WithCancelCause), asks Serve to stop at once: readiness fails, the
// listener and every connection close, with no drain delay and no wait for
// running requests. A program gives it for an interrupt typed at a terminal
// (Ctrl-C, SIGINT), whose user waits for the prompt and no load balancer
// needs draining, and keeps the graceful stop for SIGTERM, which
// orchestrators send.
var ErrStopNow = errors.New("stop now")

// Serve serves srv on ln (or on srv.Addr, default ":http", when ln is nil), with
// TLS when srv.TLSConfig holds certificates, until ctx is done, then shuts down
// gracefully: readiness fails first (Health.ShuttingDown), the drain delay
// passes, srv.Shutdown waits for in-flight requests up to ShutdownTimeout, and
// srv.Close ends what remains. When the context's cause is ErrStopNow, Close
// comes at once instead. It returns nil after a clean shutdown (or a stop
// asked for with ErrStopNow), the error of srv.Serve if serving failed, or an
// error saying Shutdown timed out.
//
// Serve handles no signals: the end of ctx is its only shutdown request, so the
// program's main owns SIGTERM and SIGINT in one place, typically with
//
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
//	defer stop()
//	context.AfterFunc(ctx, stop) // a second signal ends the process at once
//
// (cancelling with a cause that wraps ErrStopNow for os.Interrupt, to skip
// the drain a terminal's user has no use for).
//
// Were Serve to listen for signals too, one signal would have two owners and
// the copy Serve received could be taken for a second signal.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if ln == nil {
		addr := srv.Addr
		if addr == "" {
			addr = ":http"
		}
		var err error
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() {
		if c := srv.TLSConfig; c != nil && (len(c.Certificates) > 0 || c.GetCertificate != nil || c.GetConfigForClient != nil) {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()

	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx).Error(), "addr", ln.Addr().String())
	}
	if errors.Is(context.Cause(ctx), ErrStopNow) {
		if opts.Health != nil {
			opts.Health.ShuttingDown()
		}
		srv.Close()
		<-errc
		log.Info("stopped at once: no drain, running requests were cut")
		return nil
	}

	drain := opts.DrainDelay
	if drain == 0 && opts.Health != nil {
		drain = 5 * time.Second
	}
	if opts.Health != nil {
		opts.Health.ShuttingDown()
	}
	if drain > 0 {
		log.Info("draining", "delay", drain.String())
		t := time.NewTimer(drain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		}
		t.Stop()
	}

	timeout := orDuration(opts.ShutdownTimeout, 20*time.Second)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // srv.Serve has returned ErrServerClosed
	if err != nil {
		log.Warn("shutdown deadline passed, closing remaining connections", "timeout", timeout.String())
		srv.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", timeout, err)
	}
	log.Info("shut down")
	return nil
}
