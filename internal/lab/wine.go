package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Wine runs the Windows build of berth under Debian's wine64 inside a
// Pair's client namespace: the Windows code paths (GetAdaptersAddresses,
// GetAddrInfoW, the certificate store, the registry, Winsock errors) meet
// the lab's real faults. Go 1.24+ needs bcryptprimitives.dll's ProcessPrng,
// which wine 8.0 lacks; StubDLL is the stub ./test.sh builds from
// internal/winstub.
type Wine struct {
	Bin     string // wine64
	Server  string // wineserver
	StubDLL string
	Exe     string // berth.exe
	base    string // a booted prefix with the stub installed
}

// StubDLLPath is where ./test.sh builds the stub: $BERTH_WINE_STUB, else
// $HOME/.cache/berth-ci/wine/bcryptprimitives.dll.
func StubDLLPath() string {
	if p := os.Getenv("BERTH_WINE_STUB"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "berth-ci", "wine", "bcryptprimitives.dll")
}

// FindWine returns the wine tools, or why the wine runs cannot happen here.
func FindWine() (*Wine, string) {
	w := &Wine{StubDLL: StubDLLPath()}
	for _, c := range [][2]string{{"/usr/lib/wine/wine64", "/usr/lib/wine/wineserver64"}, {"/usr/lib/wine/wine64", "/usr/lib/wine/wineserver"}} {
		if _, err := os.Stat(c[0]); err == nil {
			if _, err := os.Stat(c[1]); err == nil {
				w.Bin, w.Server = c[0], c[1]
				break
			}
		}
	}
	if w.Bin == "" {
		if p, err := exec.LookPath("wine64"); err == nil {
			w.Bin = p
			if s, err := exec.LookPath("wineserver"); err == nil {
				w.Server = s
			}
		}
	}
	if w.Bin == "" || w.Server == "" {
		return nil, "wine64 is not installed (apt-get install wine64; ./test.sh installs it as root)"
	}
	if _, err := os.Stat(w.StubDLL); err != nil {
		return nil, "the stub bcryptprimitives.dll is not built at " + w.StubDLL + " (./test.sh builds it from internal/winstub with x86_64-w64-mingw32-gcc)"
	}
	return w, ""
}

// Setup builds berth.exe (CGO_ENABLED=0 GOOS=windows) from pkg into dir and
// boots a wine prefix there with the stub DLL in system32, where Go's
// runtime looks for bcryptprimitives.dll.
func (w *Wine) Setup(dir, pkg string) error {
	w.Exe = filepath.Join(dir, "berth.exe")
	build := exec.Command("go", "build", "-o", w.Exe, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building berth.exe: %v\n%s", err, out)
	}
	w.base = filepath.Join(dir, "wine-base")
	boot, cancelBoot := command(3*time.Minute, w.Bin, "wineboot", "-i")
	defer cancelBoot()
	boot.Env = w.env(w.base, dir)
	if out, err := boot.CombinedOutput(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("wineboot: %v\n%s", err, lastLines(out, 20))
	}
	k0, cancelK0 := command(30*time.Second, w.Server, "-k")
	defer cancelK0()
	_ = k0.Run() // the boot's server, outside any lab namespace
	kill, cancelKill := command(30*time.Second, w.Server, "-k")
	defer cancelKill()
	kill.Env = w.env(w.base, dir)
	_ = kill.Run()
	data, err := os.ReadFile(w.StubDLL)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(w.base, "drive_c", "windows", "system32", "bcryptprimitives.dll"), data, 0o644)
}

// command is exec.Command bounded to d, whose Wait also returns at most 1 s
// after the process exits: wine starts daemons (wineserver, winedevice.exe)
// that inherit the command's output pipes and would otherwise keep Wait
// reading them forever. The caller calls cancel when done.
func command(d time.Duration, name string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd, cancel
}

func (w *Wine) env(prefix, home string) []string {
	return []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all", "HOME=" + home, "PATH=/usr/lib/wine:/usr/bin:/bin", "DISPLAY="}
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// WineResult is one run of berth.exe doctor under wine.
type WineResult struct {
	Result
	// Startup is the wall time of "berth.exe version" run just before in the
	// same namespace: wine's own start-up, which the doctor's deadline
	// cannot include.
	Startup time.Duration
}

// RunDoctor runs "berth.exe doctor args" under wine in p's client
// namespace, with its own copy of the prefix (hard links, registry files
// copied) so that its wineserver, which owns the sockets, starts inside the
// namespace. env is the Windows process's environment. reg are "wine reg"
// argument lists applied first (Windows proxy settings).
func (w *Wine) RunDoctor(p *Pair, env []string, args []string, reg ...[]string) WineResult {
	p.t.Helper()
	prefix := filepath.Join(p.Dir, fmt.Sprintf("wine%d", seq.Add(1)))
	if out, err := exec.Command("cp", "-al", w.base, prefix).CombinedOutput(); err != nil {
		p.t.Fatalf("copying the wine prefix: %v: %s", err, out)
	}
	for _, f := range []string{"system.reg", "user.reg", "userdef.reg"} {
		src := filepath.Join(w.base, f)
		if data, err := os.ReadFile(src); err == nil {
			dst := filepath.Join(prefix, f)
			_ = os.Remove(dst)
			_ = os.WriteFile(dst, data, 0o644)
		}
	}
	home := filepath.Join(p.Dir, "winehome")
	_ = os.MkdirAll(home, 0o755)
	wenv := append(w.env(prefix, home), env...)
	run := func(cmdArgs ...string) (Result, error) {
		full := append([]string{"netns", "exec", p.Client, "env", "-i"}, wenv...)
		full = append(full, cmdArgs...)
		cmd, cancel := command(2*time.Minute, "ip", full...)
		defer cancel()
		cmd.Dir = home
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		start := time.Now()
		err := cmd.Run()
		if errors.Is(err, exec.ErrWaitDelay) {
			err = nil // the process ended; a wine daemon still holds its pipes
		}
		r := Result{Stdout: so.Bytes(), Stderr: se.Bytes(), Wall: time.Since(start)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.Code = ee.ExitCode()
			err = nil
		}
		return r, err
	}
	p.t.Cleanup(func() {
		k, cancel := command(30*time.Second, "ip", append(append([]string{"netns", "exec", p.Client, "env", "-i"}, wenv...), w.Server, "-k")...)
		defer cancel()
		_ = k.Run()
	})
	for _, r := range reg {
		if res, err := run(append([]string{w.Bin, "reg"}, r...)...); err != nil || res.Code != 0 {
			p.t.Fatalf("wine reg %v: %v %s", r, err, res.Stderr)
		}
	}
	warm, err := run(w.Bin, w.Exe, "version")
	if err != nil || warm.Code != 0 {
		p.t.Fatalf("berth.exe version under wine: %v (exit %d)\n%s\n%s", err, warm.Code, warm.Stdout, lastLines(warm.Stderr, 20))
	}
	res, err := run(append([]string{w.Bin, w.Exe, "doctor"}, args...)...)
	if err != nil {
		p.t.Fatalf("berth.exe doctor under wine: %v", err)
	}
	return WineResult{Result: res, Startup: warm.Wall}
}
