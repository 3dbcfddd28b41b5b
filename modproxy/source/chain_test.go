package source

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string
		off      bool
		ignored  []string
		err      string // the start of the error, "" for none
	}{
		{in: "https://a.test", want: "https://a.test"},
		{in: "https://a.test,https://b.test|https://c.test", want: "https://a.test,https://b.test|https://c.test"},
		{in: "a.test/path/", want: "https://a.test/path"},
		{in: "localhost:3000", want: "https://localhost:3000"},
		{in: "https://a.test,direct", want: "https://a.test,direct"},
		{in: "https://a.test,direct,", want: "https://a.test,direct"},
		{in: "https://a.test|direct,https://b.test", want: "https://a.test|direct", ignored: []string{"https://b.test"}},
		{in: "direct", want: "direct"},
		{in: "direct,off", want: "direct", ignored: []string{"off"}},
		// "off" ends the list for the go command too: nothing berth lacks is cut.
		{in: "https://a.test,off,https://b.test", want: "https://a.test"},
		{in: "https://a.test,off", want: "https://a.test"},
		{in: "off", want: "off", off: true},
		{in: "off,banana", want: "off", off: true},
		{in: "file:///srv/tree", want: "file:///srv/tree"},
		{in: "", err: "empty upstream list"},
		{in: ",", err: "GOPROXY list is not the empty string, but contains no entries"},
		{in: " ", err: "GOPROXY list is not the empty string, but contains no entries"},
		{in: "banana", err: "invalid proxy URL missing scheme: banana"},
		{in: "OFF", err: "invalid proxy URL missing scheme: OFF"},
		{in: "https://a.test,banana", err: "invalid proxy URL missing scheme: banana"},
		{in: "ftp://a.test", err: "invalid proxy URL scheme (must be https, http, file): ftp://a.test"},
		{in: "file://host/srv", err: "invalid file:// proxy URL with non-path elements: file://host/srv"},
		{in: "http://", err: "invalid proxy URL missing host: http://"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, %v; want an error %q", tt.in, c, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if c.String() != tt.want || c.Off != tt.off || !slices.Equal(c.Ignored, tt.ignored) {
			t.Errorf("Parse(%q) = %q off=%v ignored=%q; want %q off=%v ignored=%q", tt.in, c, c.Off, c.Ignored, tt.want, tt.off, tt.ignored)
		}
	}
}

// TestFallThrough checks GOPROXY semantics against real servers: "," moves on
// only after 404/410, "|" after any error.
func TestFallThrough(t *testing.T) {
	status := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, "body")
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close() // connection refused from now on
	ok, nf, gone, fail := status(200), status(404), status(410), status(503)

	tests := []struct {
		list    string
		wantOK  bool
		notFnd  bool
		comment string
	}{
		{nf + "," + ok, true, false, "404 falls through ,"},
		{gone + "," + ok, true, false, "410 falls through ,"},
		{fail + "," + ok, false, false, "503 stops ,"},
		{fail + "|" + ok, true, false, "503 falls through |"},
		{dead + "," + ok, false, false, "refused stops ,"},
		{dead + "|" + ok, true, false, "refused falls through |"},
		{nf + "," + gone, false, true, "all not found"},
		{nf + "|" + fail, false, false, "last error wins over not found"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.list)
		if err != nil {
			t.Fatal(err)
		}
		f := &Fetcher{Chain: c, Client: &http.Client{}}
		body, err := f.List(context.Background(), "example.test/m")
		if body != nil {
			body.Close()
		}
		if (err == nil) != tt.wantOK || errors.Is(err, ErrNotFound) != tt.notFnd {
			t.Errorf("%s: err %v", tt.comment, err)
		}
	}
	// A final "direct" gets what the walk passes on, and nothing else.
	direct := func() *Fetcher {
		c, _ := Parse(status(200))
		return &Fetcher{Chain: c, Client: &http.Client{}}
	}
	for _, tt := range []struct {
		list       string
		wantDirect bool
		wantErr    bool
	}{
		{"direct", true, false},
		{nf + ",direct", true, false},
		{nf + "," + gone + ",direct", true, false},
		{fail + ",direct", false, true},
		{fail + "|direct", true, false},
		{dead + "|" + nf + ",direct", true, false},
		{ok + ",direct", false, false},
	} {
		c, err := Parse(tt.list)
		if err != nil {
			t.Fatal(err)
		}
		d := direct()
		f := &Fetcher{Chain: c, Client: &http.Client{}, Direct: d}
		body, err := f.Mod(context.Background(), "example.test/m", "v1.0.0")
		if body != nil {
			body.Close()
		}
		gotDirect := err == nil && strings.HasPrefix(body.Origin, d.Chain.Upstreams[0].String())
		if (err != nil) != tt.wantErr || gotDirect != tt.wantDirect {
			t.Errorf("%s: direct %v, err %v", tt.list, gotDirect, err)
		}
	}
	off, _ := Parse("off")
	if _, err := (&Fetcher{Chain: off}).Zip(context.Background(), "example.test/m", "v1.0.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("off: %v", err)
	}
}
