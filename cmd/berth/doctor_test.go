package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestDoctorHelpExplainsUse: the help says how to run the doctor inside someone
// else's container and what the exit codes mean (TestHelpDocumentsEveryFlag
// walks the flags).
func TestDoctorHelpExplainsUse(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runDoctor(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	help := out.String()
	for _, want := range []string{"docker cp", "--network container:", "kubectl debug", "Exit codes", "docs/doctor-json.md"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

func TestDoctorUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"ftp://x"}, {"--listen", "bad"}, {"--timeout", "0s"}} {
		var out, errb bytes.Buffer
		if code := runDoctor(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %s)", args, code, errb.String())
		}
	}
}

// TestDoctorExitCodes runs the command against a closed loopback port (exit 1)
// and with flags after the target; JSON goes to stdout.
func TestDoctorExitCodes(t *testing.T) {
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOMEMLIMIT", "1GiB")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	// The timeout bounds the whole run, facts (go env) included, and a run
	// ends when its probes do: a tight one only makes a loaded machine fail
	// the open port (seen under -race -count=30: the probe started after 2s).
	const timeout = "30s"
	var out, errb bytes.Buffer
	code := runDoctor(context.Background(), []string{addr, "--json", "--timeout", timeout}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	var rep struct {
		Schema   int
		Findings []struct{ ID string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Schema != 1 || len(rep.Findings) == 0 || rep.Findings[0].ID != "tcp.refused" {
		t.Errorf("report %+v err %v", rep, err)
	}
	out.Reset()
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if code := runDoctor(context.Background(), []string{l.Addr().String(), "--timeout", timeout}, &out, &errb); code != 0 {
		t.Errorf("open port: exit %d, want 0\n%s", code, out.String())
	}
}
