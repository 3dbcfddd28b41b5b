package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestDefaultDirectIsInfo: a list that ends in direct, as Go's default
// GOPROXY does, starts berth with one INFO line saying what no proxy has is
// fetched from version control, and no warning.
func TestDefaultDirectIsInfo(t *testing.T) {
	bin := buildBerth(t)
	up := testmod.NewUpstream(t, airgapModules())
	for _, c := range []struct {
		env, flag []string
		level     string
	}{
		{env: []string{"GOPROXY=" + up.URL() + ",direct"}, level: "INFO"},
		{flag: []string{"--upstream", up.URL() + ",direct"}, level: "INFO"},
	} {
		t.Setenv("GOPROXY", "")
		for _, kv := range c.env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		args := append([]string{"--sumdb", "off", "--store", t.TempDir()}, c.flag...)
		_, _, logs := startBerthProc(t, bin, args...) // the line comes before the listening line
		var direct []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "version control") {
				direct = append(direct, l)
			}
		}
		if len(direct) != 1 || !strings.Contains(direct[0], `"level":"`+c.level+`"`) || !strings.Contains(direct[0], "direct") {
			t.Errorf("%v %v: the lines about direct are %q, want one at %s\n%s", c.env, c.flag, direct, c.level, logs.String())
		}
	}
}
