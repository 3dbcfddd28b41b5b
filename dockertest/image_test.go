//go:build docker && linux

package dockertest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestScratchDockerfileIsFinalStage: Dockerfile.scratch, which
// scripts/image.sh builds where no registry is reachable, is the Dockerfile's
// final stage with its COPY --from=build sources read from the build context,
// so the two images cannot drift apart.
func TestScratchDockerfileIsFinalStage(t *testing.T) {
	df, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := finalStage(string(df))
	if err != nil {
		t.Fatal(err)
	}
	sf, err := os.ReadFile(scratchPath)
	if err != nil {
		t.Fatal(err)
	}
	got := string(sf)
	i := strings.Index(got, "\nFROM ")
	if i < 0 {
		t.Fatalf("%s has no FROM line", scratchPath)
	}
	if got = got[i+1:]; strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("%s differs from the final stage of %s; from its FROM line it must read:\n%s", scratchPath, dockerfilePath, want)
	}
}

// TestImageScript: the image scripts/image.sh built (the suite's berth image)
// holds what a scratch image of berth needs, runs as the non-root user, and
// its binary reports itself.
func TestImageScript(t *testing.T) {
	e := newEnv(t)
	out, _, code := e.run("version", time.Minute, "--rm", imgBerth, "version")
	if code != 0 || !strings.HasPrefix(out, "berth ") || !strings.Contains(out, "linux/") {
		t.Fatalf("berth version in the image: exit %d: %q", code, out)
	}
	user := e.docker(time.Minute, "image", "inspect", "-f", "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Entrypoint}}", imgBerth)
	if user != `65532:65532 {"/store":{}} ["/berth"]` {
		t.Errorf("image config: %s", user)
	}
	c := e.start("files", imgBerth, "proxy", "--offline")
	files := c.files("/etc")
	for _, f := range []string{"ssl/certs/ca-certificates.crt", "passwd", "group"} {
		if files[f] == 0 {
			t.Errorf("the image lacks /etc/%s (files: %v)", f, files)
		}
	}
}
