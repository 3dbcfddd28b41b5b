package gitserver

import (
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
)

// Handler is the git host's HTTP face, without the repositories' making:
// go-import meta tags for ?go-get=1, and git smart HTTP for the bare
// repositories below Root (<root>.git directories) through git http-backend
// behind Basic auth. Server serves it on loopback; cmd/gitserver serves it
// as a command (in a container of the Docker suite).
type Handler struct {
	// Host is the host name module paths start with ("git.corp.example").
	Host string
	// User and Password are the only Basic credentials git requests accept.
	User, Password string
	// Root is GIT_PROJECT_ROOT: repository root "team/lib" is Root/team/lib.git.
	Root string
	// Backend is the git-http-backend binary. Default: the one in
	// `git --exec-path`.
	Backend string
	// Repos returns the repository roots served. Nil: every <root>.git
	// directory below Root, looked up on each request.
	Repos func() []string
	// Count, when set, is told each request's kind ("go-get", "refs",
	// "upload-pack", "denied", "other") and repository root (for "go-get",
	// the path asked).
	Count func(kind, root string)
}

// ServeHTTP answers go-get meta requests and git smart HTTP.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if r.URL.Query().Get("go-get") == "1" {
		h.serveMeta(w, p)
		return
	}
	root, rest, ok := strings.Cut(p, ".git/")
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	kind := "other"
	switch {
	case rest == "info/refs":
		kind = "refs"
	case rest == "git-upload-pack":
		kind = "upload-pack"
	case rest == "git-receive-pack" || r.URL.Query().Get("service") == "git-receive-pack":
		http.Error(w, "pushing is not served", http.StatusForbidden)
		return
	}
	if u, pw, ok := r.BasicAuth(); !ok || u != h.User || pw != h.Password {
		h.count("denied", root)
		w.Header().Set("WWW-Authenticate", `Basic realm="corp git"`)
		http.Error(w, "HTTP Basic: Access denied", http.StatusUnauthorized)
		return
	}
	found := false
	for _, r := range h.repos() {
		found = found || r == root
	}
	if !found {
		http.Error(w, "repository not found", http.StatusNotFound)
		return
	}
	h.count(kind, root)
	backend := h.Backend
	if backend == "" {
		out, err := exec.Command("git", "--exec-path").Output()
		if err != nil {
			http.Error(w, "no git command: "+err.Error(), http.StatusInternalServerError)
			return
		}
		backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	}
	cg := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env:  []string{"GIT_PROJECT_ROOT=" + h.Root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + h.User},
	}
	cg.ServeHTTP(w, r)
}

// serveMeta answers ?go-get=1 for p with the repository whose root is p or
// a prefix of it, as git hosts do.
func (h *Handler) serveMeta(w http.ResponseWriter, p string) {
	var best string
	for _, root := range h.repos() {
		if (p == root || strings.HasPrefix(p, root+"/")) && len(root) > len(best) {
			best = root
		}
	}
	h.count("go-get", p)
	if best == "" {
		http.Error(w, "no repository at "+p, http.StatusNotFound)
		return
	}
	imp := h.Host + "/" + best
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><meta name=\"go-import\" content=\"%s git https://%s/%s.git\"></head><body>go get %s</body></html>\n",
		html.EscapeString(imp), h.Host, html.EscapeString(best), html.EscapeString(imp))
}

func (h *Handler) count(kind, root string) {
	if h.Count != nil {
		h.Count(kind, root)
	}
}

func (h *Handler) repos() []string {
	if h.Repos != nil {
		return h.Repos()
	}
	var roots []string
	filepath.WalkDir(h.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || !strings.HasSuffix(p, ".git") {
			return nil
		}
		if rel, err := filepath.Rel(h.Root, p); err == nil {
			roots = append(roots, filepath.ToSlash(strings.TrimSuffix(rel, ".git")))
		}
		return fs.SkipDir
	})
	return roots
}
