package doctor

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/sync/singleflight"
)

// Handler returns an http.Handler that runs the doctor with opts on every
// request and serves the report: JSON when the request asks for it
// (Accept: application/json or ?format=json), text otherwise. The status is
// 200 when the report has no error finding and 503 when it does, so the
// endpoint doubles as a deep health check. A service mounts it on an
// internal port to expose its own diagnosis with its own resolver,
// environment and roots. Concurrent requests share one run, so a burst of
// requests does not multiply the probes.
func Handler(opts Options) http.Handler {
	var g singleflight.Group
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err, _ := g.Do("run", func() (any, error) {
			// Not r.Context(): the run is shared; Options.Timeout bounds it.
			return Run(context.WithoutCancel(r.Context()), opts)
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rep := v.(*Report)
		code := http.StatusOK
		if !rep.Healthy() {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = rep.WriteJSON(w)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_ = rep.WriteText(w)
	})
}
