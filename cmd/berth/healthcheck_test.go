package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ok.Close()
	// A port with nothing listening: bind, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/"
	ln.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // the whole of stdout
		stderr string // the start of stderr
	}{
		{"healthy", []string{ok.URL + "/healthz"}, 0, "healthy: " + ok.URL + "/healthz: 200 OK\n", ""},
		{"status", []string{ok.URL + "/bad"}, 1, "", "unhealthy: " + ok.URL + "/bad: http-status (status 503 Service Unavailable)\n"},
		{"refused", []string{"--timeout", "2s", refused}, 1, "", "unhealthy: " + refused + ": refused ("},
		{"no url", nil, 2, "", "berth healthcheck: want exactly one URL, such as http://127.0.0.1:3000/readyz\nRun 'berth healthcheck --help' for the flags.\n"},
		{"not http", []string{"ftp://127.0.0.1/"}, 2, "", `berth healthcheck: "ftp://127.0.0.1/" is not an http or https URL` + "\nRun 'berth healthcheck --help' for the flags.\n"},
		{"bad flag", []string{"--nope", ok.URL}, 2, "", "berth healthcheck: --nope: no such flag\nRun 'berth healthcheck --help' for the flags.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runHealthcheck(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errb.String())
			}
			if out.String() != tc.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tc.stdout)
			}
			if !strings.HasPrefix(errb.String(), tc.stderr) || tc.stderr == "" && errb.Len() > 0 {
				t.Errorf("stderr %q, want it to start with %q", errb.String(), tc.stderr)
			}
		})
	}
}
