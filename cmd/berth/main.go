// Command berth keeps Go builds and Go services working in containers.
//
// It is one static binary with subcommands:
//
//	berth proxy        a caching Go module proxy (GOPROXY protocol, checksum-DB proxying)
//	berth doctor       find why this container cannot reach the network, and print the fix
//	berth token        create, list and revoke client tokens (berth proxy --auth-file)
//	berth goauth       a GOAUTH command handing the go command a berth token
//	berth healthcheck  probe a health URL and exit 0 or 1 (for HEALTHCHECK without a shell)
//	berth version      print the version
//
// The command only parses flags and calls the packages; see each package for the logic.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/netkit"
)

// command is one subcommand of berth.
type command struct {
	name    string
	summary string
	// run executes the subcommand with its arguments (the subcommand name removed)
	// and returns the process exit code: 0 success, 1 failure, 2 usage error.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"proxy", "run the caching Go module proxy", runProxy},
		{"doctor", "diagnose this container's network the way Go sees it", runDoctor},
		{"warm", "fill the store from go.sum, go.mod or module@version, for offline builds", runWarm},
		{"export", "write the store (or part of it) as a bundle for an air-gapped site", runExport},
		{"import", "verify a bundle and load it into the store", runImport},
		{"token", "create, list and revoke the client tokens of berth proxy --auth-file", runToken},
		{"goauth", "a GOAUTH command that gives the go command a berth token", runGoauth},
		{"healthcheck", "GET a health URL; exit 0 if healthy, 1 if not", runHealthcheck},
		{"version", "print berth's version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		// "berth help CMD" is "berth CMD --help".
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		if len(args) > 2 {
			fmt.Fprintf(stderr, "berth help: want one command, not %d\n", len(args)-1)
			fmt.Fprintln(stderr, "Run 'berth help' for the commands.")
			return 2
		}
		args = []string{args[1], "--help"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			ctx, stop := signalContext()
			defer stop()
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "berth: unknown command %q\n", args[0])
	fmt.Fprintln(stderr, "Run 'berth help' for the commands.")
	return 2
}

// signalContext is berth's one owner of signals (netkit.Serve has none): the
// first SIGTERM or SIGINT ends the context. SIGTERM, which orchestrators send,
// means "stop gracefully" (the proxy fails readiness and drains); SIGINT, the
// Ctrl-C of a terminal, ends it with a cause that wraps netkit.ErrStopNow,
// "stop at once" (no drain: nobody balances load onto a terminal's proxy).
// The notification stops before the context ends, so once a command sees it
// end a second signal has its default action and ends berth at once. stop
// releases the handler.
func signalContext() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sigc:
			signal.Stop(sigc)
			if s == os.Interrupt {
				cancel(fmt.Errorf("%v signal received: %w", s, netkit.ErrStopNow))
			} else {
				cancel(fmt.Errorf("%v signal received", s))
			}
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigc)
		cancel(context.Canceled)
		<-done
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "berth keeps Go builds and services working in containers.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: berth <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "berth help <command>" or "berth <command> --help" for a command's flags.`)
}
