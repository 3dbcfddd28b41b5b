package goenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var proxyTests = []struct {
	in   string
	want []ProxyEntry
	err  string // the go command's error, "" for none
}{
	{in: "https://proxy.example.test", want: []ProxyEntry{{URL: "https://proxy.example.test"}}},
	{in: "proxy.example.test", want: []ProxyEntry{{URL: "https://proxy.example.test"}}},
	{in: "proxy.example.test:8080/mod/", want: []ProxyEntry{{URL: "https://proxy.example.test:8080/mod/"}}},
	{in: "localhost:3000", want: []ProxyEntry{{URL: "https://localhost:3000"}}},
	{in: "HTTP://proxy.example.test", want: []ProxyEntry{{URL: "HTTP://proxy.example.test"}}},
	{in: "http://", want: []ProxyEntry{{URL: "http://"}}},
	{in: "file:///srv/tree", want: []ProxyEntry{{URL: "file:///srv/tree"}}},
	{in: " a.example.test , b.example.test | c.example.test ,", want: []ProxyEntry{
		{URL: "https://a.example.test"}, {URL: "https://b.example.test", FallbackOnError: true}, {URL: "https://c.example.test"}}},
	{in: "a.example.test|", want: []ProxyEntry{{URL: "https://a.example.test", FallbackOnError: true}}},
	{in: ",,a.example.test", want: []ProxyEntry{{URL: "https://a.example.test"}}},
	{in: "https://a.example.test,direct", want: []ProxyEntry{{URL: "https://a.example.test"}, {Direct: true}}},
	{in: "https://a.example.test|direct|banana", want: []ProxyEntry{{URL: "https://a.example.test", FallbackOnError: true}, {Direct: true, Unread: "banana"}}},
	{in: "direct", want: []ProxyEntry{{Direct: true}}},
	{in: "off", want: []ProxyEntry{{Off: true}}},
	{in: " off ", want: []ProxyEntry{{Off: true}}},
	{in: "off,banana", want: []ProxyEntry{{Off: true, Unread: "banana"}}},
	{in: "a.example.test,off", want: []ProxyEntry{{URL: "https://a.example.test"}, {Off: true}}},
	{in: "https://u:secret@a.example.test", want: []ProxyEntry{{URL: "https://u:secret@a.example.test"}}},

	{in: "banana", err: "invalid proxy URL missing scheme: banana"},
	{in: "OFF", err: "invalid proxy URL missing scheme: OFF"},
	{in: "Direct", err: "invalid proxy URL missing scheme: Direct"},
	{in: "banana,off", err: "invalid proxy URL missing scheme: banana"},
	{in: "a.example.test|banana", err: "invalid proxy URL missing scheme: banana"},
	{in: "/srv/tree", err: "invalid proxy URL missing scheme: /srv/tree"},
	{in: "ftp://a.example.test", err: "invalid proxy URL scheme (must be https, http, file): ftp://a.example.test"},
	{in: "x:/y", err: "invalid proxy URL scheme (must be https, http, file): x:/y"},
	{in: "file://host/srv", err: "invalid file:// proxy URL with non-path elements: file://host/srv"},
	{in: "file:/srv/tree", err: "invalid file:// proxy URL with non-path elements: file:/srv/tree"},
	{in: "file:///srv?x", err: "invalid file:// proxy URL with non-path elements: file:///srv?x"},
	{in: "file://u:secret@host/srv", err: "invalid file:// proxy URL with non-path elements: file://u:xxxxx@host/srv"},
	{in: "a:b", err: `parse "https://a:b": invalid port ":b" after host`},
	{in: "https://a b", err: `parse "https://a b": invalid character " " in host name`},
	{in: "%zz.example.test", err: `parse "https://%zz.example.test": invalid URL escape "%zz"`},
	{in: ",", err: "GOPROXY list is not the empty string, but contains no entries"},
	{in: " ", err: "GOPROXY list is not the empty string, but contains no entries"},
	{in: " |, ", err: "GOPROXY list is not the empty string, but contains no entries"},
}

func TestParseProxyList(t *testing.T) {
	for _, tt := range proxyTests {
		got, err := ParseProxyList(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseProxyList(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseProxyList(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseProxyList(""); err == nil {
		t.Error(`ParseProxyList("") succeeded`)
	}
}

func TestFormatProxyList(t *testing.T) {
	for in, want := range map[string]string{
		"a.example.test , b.example.test|c.example.test|": "https://a.example.test,https://b.example.test|https://c.example.test|",
		"https://a.example.test|direct|x":                 "https://a.example.test|direct",
		"off,banana":                                      "off",
	} {
		l, err := ParseProxyList(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatProxyList(l); got != want {
			t.Errorf("FormatProxyList(ParseProxyList(%q)) = %q, want %q", in, got, want)
		}
	}
}

// TestProxyListLikeGoCommand gives the go command each value ParseProxyList
// refuses, or that starts with "off", and checks that it refuses the same way,
// with the same words. None of these values lets it reach a network.
func TestProxyListLikeGoCommand(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/m\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range proxyTests {
		want := tt.err
		if want == "" {
			if !tt.want[0].Off {
				continue
			}
			want = "module lookup disabled by GOPROXY=off"
		}
		cmd := exec.Command(goBin, "mod", "download", "-json", "example.test/x@v1.0.0")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY="+tt.in, "GOFLAGS=-mod=mod", "GONOPROXY=", "GOPRIVATE=",
			"GOSUMDB=off", "GOTOOLCHAIN=local", "GOWORK=off", "GOPATH="+filepath.Join(dir, "gopath"), "GOMODCACHE="+filepath.Join(dir, "modcache"))
		out, _ := cmd.Output()
		if !strings.Contains(string(out), `"Error": "example.test/x@v1.0.0: `+jsonQuote(want)+`"`) {
			t.Errorf("GOPROXY=%q: the go command says\n%s\nwant %q", tt.in, out, want)
		}
	}
}

func jsonQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

func FuzzParseProxyList(f *testing.F) {
	for _, tt := range proxyTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseProxyList(s)
		if err != nil {
			return
		}
		if len(l) == 0 {
			t.Fatalf("ParseProxyList(%q) returned no entries and no error", s)
		}
		for i, e := range l {
			last := i == len(l)-1
			switch {
			case e.Off || e.Direct:
				if !last || e.URL != "" || e.FallbackOnError || (e.Off && e.Direct) {
					t.Fatalf("ParseProxyList(%q): bad entry %d %+v", s, i, e)
				}
			case e.URL == "" || e.Unread != "" || strings.ContainsAny(e.URL, ",|") || strings.TrimSpace(e.URL) != e.URL:
				t.Fatalf("ParseProxyList(%q): bad entry %d %+v", s, i, e)
			}
		}
		// Formatting and parsing again gives the same list, Unread aside.
		again, err := ParseProxyList(FormatProxyList(l))
		l[len(l)-1].Unread = ""
		if err != nil || !reflect.DeepEqual(again, l) {
			t.Fatalf("ParseProxyList(%q) = %+v; formatted %q and parsed again: %+v, %v", s, l, FormatProxyList(l), again, err)
		}
	})
}
