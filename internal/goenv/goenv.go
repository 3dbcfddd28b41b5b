// Package goenv is berth's one reading of the go command's module
// configuration: where a variable's value comes from (the environment, else
// `go env`), and what GOPROXY, GOSUMDB and the GOPRIVATE family of patterns
// mean. The proxy, warm, import, export and the doctor all go through it, so
// they accept what the go command accepts, refuse what it refuses with the go
// command's own words, and agree with each other.
//
// Read and Lookup find values; ParseProxyList and FormatProxyList handle
// GOPROXY (proxy.go), ParseSumDB handles GOSUMDB (sumdb.go), and Patterns,
// NoProxy and NoSumDB handle GOPRIVATE, GONOPROXY and GONOSUMDB
// (patterns.go). The rules follow cmd/go/internal/cfg and
// cmd/go/internal/modfetch of the go command.
package goenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Origin says where Read found a variable's value.
type Origin int

const (
	// Unset: neither the environment nor a go command gave a value.
	Unset Origin = iota
	// Environment: the value is a non-empty environment variable.
	Environment
	// GoEnv: the value is what `go env` printed (the user's go/env file,
	// $GOROOT/go.env or the go command's built-in default; possibly "").
	GoEnv
)

func (o Origin) String() string {
	switch o {
	case Environment:
		return "environment"
	case GoEnv:
		return "go env"
	}
	return "unset"
}

// ErrNoGoCommand is returned (wrapped) by Read and Lookup when a value is not
// in the environment and no go command can be found to ask.
var ErrNoGoCommand = errors.New("no go command on PATH")

// GoEnvTimeout bounds one `go env` call.
const GoEnvTimeout = 10 * time.Second

// Lookup returns a Go configuration variable as the go command sees it: the
// environment variable if it is set and not empty, else what `go env NAME`
// prints when a go command is on PATH. As in the go command, a variable set
// to "" counts as unset: the go command then reads its go/env files.
func Lookup(ctx context.Context, name string) (string, error) {
	vals, _, err := Read(ctx, nil, "", name)
	return vals[name], err
}

// Read returns many Go configuration variables at once: those that getenv
// reports set and not empty come from it (Origin Environment), the rest from
// one `go env -json NAME...` call (Origin GoEnv). getenv nil means
// os.LookupEnv; goBin "" means the "go" found on PATH.
//
// The go command is run with the caller's view of the environment for the
// names asked (and GOPRIVATE, on which GONOPROXY and GONOSUMDB default), so a
// getenv that differs from the process environment gets consistent answers,
// and with GOTOOLCHAIN=local unless GOTOOLCHAIN itself is asked for, so that
// reading configuration never downloads a toolchain.
//
// On error the maps still hold what was found: with no go command the error
// wraps ErrNoGoCommand and the names not in the environment are Unset.
func Read(ctx context.Context, getenv func(string) (string, bool), goBin string, names ...string) (map[string]string, map[string]Origin, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	vals := make(map[string]string, len(names))
	origins := make(map[string]Origin, len(names))
	var missing []string
	for _, n := range names {
		if _, seen := origins[n]; seen {
			continue
		}
		if v, ok := getenv(n); ok && v != "" {
			vals[n], origins[n] = v, Environment
			continue
		}
		origins[n] = Unset
		missing = append(missing, n)
	}
	if len(missing) == 0 {
		return vals, origins, nil
	}
	list := strings.Join(missing, ", ")
	if goBin == "" {
		p, err := exec.LookPath("go")
		if err != nil {
			return vals, origins, fmt.Errorf("%s not set in the environment and %w to ask (%v)", list, ErrNoGoCommand, err)
		}
		goBin = p
	}
	out, err := runGoEnv(ctx, getenv, goBin, names, missing)
	if err != nil {
		return vals, origins, fmt.Errorf("%s not set in the environment and %w", list, err)
	}
	for _, n := range missing {
		vals[n], origins[n] = out[n], GoEnv
	}
	return vals, origins, nil
}

func runGoEnv(ctx context.Context, getenv func(string) (string, bool), goBin string, names, missing []string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, GoEnvTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"env", "-json"}, missing...)...)
	// The child sees the caller's view of every name asked: a value getenv
	// does not report must not come from this process's own environment.
	env := os.Environ()
	override := append([]string{"GOPRIVATE"}, names...)
	toolchain := false
	for _, n := range override {
		v, _ := getenv(n)
		env = append(env, n+"="+v)
		toolchain = toolchain || n == "GOTOOLCHAIN"
	}
	if !toolchain {
		env = append(env, "GOTOOLCHAIN=local")
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), GoEnvTimeout)
		}
		if msg := firstLine(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, fmt.Errorf("`%s env` failed: %w", goBin, err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("`%s env -json` printed no JSON object: %w", goBin, err)
	}
	return m, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.TrimSpace(s)
}
