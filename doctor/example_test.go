package doctor_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/berth-dev/berth/doctor"
)

// A service exposes its own diagnosis on an internal port: the same probes
// berth doctor runs, from inside the process, with its environment.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/debug/doctor", doctor.Handler(doctor.Options{
		Targets: []string{"https://api.example.test/healthz", "db.example.test:5432"},
		Timeout: 3 * time.Second,
	}))
	_ = mux // serve it on an admin listener: http.ListenAndServe("127.0.0.1:9090", mux)
}

// Run returns the report as data; print it or act on the findings.
func ExampleRun() {
	rep, err := doctor.Run(context.Background(), doctor.Options{
		Targets: []string{"https://proxy.example.test/"},
		Timeout: 2 * time.Second,
	})
	if err != nil {
		fmt.Println(err) // only invalid Options end up here
		return
	}
	for _, f := range rep.Findings {
		if f.Severity == doctor.SevError {
			fmt.Fprintf(os.Stderr, "%s: %s\n", f.ID, f.Summary)
		}
	}
}
