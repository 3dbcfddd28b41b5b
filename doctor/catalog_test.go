package doctor

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCatalogProduced: every id and severity the catalog declares is
// produced by some analyse case, and every finding a case produces is in
// the catalog with a declared severity, layer and summary shape.
func TestCatalogProduced(t *testing.T) {
	produced := map[id]map[Severity]bool{}
	for _, c := range analyseCases {
		r := runCase(t, c)
		for _, f := range r.Findings {
			s, ok := specs[id(f.ID)]
			if !ok {
				t.Errorf("case %s: finding %s is not in the catalog", c.name, f.ID)
				continue
			}
			if !slices.Contains(s.severities, f.Severity) {
				t.Errorf("case %s: %s has severity %s; the catalog declares %v", c.name, f.ID, f.Severity, s.severities)
			}
			if !matchesShape(s.summaries, f.Summary) {
				t.Errorf("case %s: %s summary %q matches none of the catalog's shapes %q", c.name, f.ID, f.Summary, s.summaries)
			}
			if produced[s.id] == nil {
				produced[s.id] = map[Severity]bool{}
			}
			produced[s.id][f.Severity] = true
		}
	}
	for _, s := range catalog {
		for _, sev := range s.severities {
			if !produced[s.id][sev] {
				t.Errorf("no analyse case produces %s at severity %s", s.id, sev)
			}
		}
	}
}

// matchesShape reports whether summary has one of the shapes, where <...>
// stands for any non-empty text, after an optional "VAR=value: " prefix.
func matchesShape(shapes []string, summary string) bool {
	for _, sh := range shapes {
		parts := regexp.MustCompile(`<[^>]*>`).Split(sh, -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		// A summary may start with the configuration that led there
		// ("GOPROXY=...: ", "HTTPS_PROXY=...: "), see nameConfig.
		if regexp.MustCompile("^(?:[A-Za-z_]+=\\S*: )?" + strings.Join(parts, ".+") + "$").MatchString(summary) {
			return true
		}
	}
	return false
}

// TestFoldRules: every fold rule moves a finding under its root in some
// case, and in some case leaves a finding beside its root (a warning, or a
// failure the root does not explain).
func TestFoldRules(t *testing.T) {
	folded, beside := map[id]bool{}, map[id]bool{}
	for _, c := range analyseCases {
		r, a := analyseCase1(t, c)
		for _, f := range a.folded {
			folded[f.root] = true
		}
		for _, rule := range foldRules {
			if findingByID(r, string(rule.root)) != nil && len(r.Findings) > 1 {
				beside[rule.root] = true
			}
		}
	}
	for _, rule := range foldRules {
		if !folded[rule.root] {
			t.Errorf("fold rule %s folds nothing in any analyse case", rule.root)
		}
		if !beside[rule.root] {
			t.Errorf("fold rule %s: no analyse case keeps another finding beside it", rule.root)
		}
	}
}

func TestCatalogWellFormed(t *testing.T) {
	seen := map[id]bool{}
	for _, s := range catalog {
		if seen[s.id] {
			t.Errorf("%s declared twice", s.id)
		}
		seen[s.id] = true
		if len(s.severities) == 0 || s.meaning == "" || len(s.summaries) == 0 || s.cause == "" || len(s.fix) == 0 {
			t.Errorf("%s: incomplete spec %+v", s.id, s)
		}
	}
	for _, r := range foldRules {
		for _, x := range append([]id{r.root}, r.absorbs...) {
			if !seen[x] {
				t.Errorf("fold rule %s names %s, which is not in the catalog", r.root, x)
			}
		}
	}
}

// TestCatalogDocumented: docs/doctor-json.md lists exactly the catalog's
// ids, in its order, with its severities and meanings. On a mismatch the
// message has the table to paste.
func TestCatalogDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/doctor-json.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "### Finding IDs\n")
	if !ok {
		t.Fatal("docs/doctor-json.md has no \"### Finding IDs\" section")
	}
	if i := strings.Index(sec, "\n#"); i >= 0 {
		sec = sec[:i]
	}
	row := regexp.MustCompile("^\\| `([^`]+)` \\| ([a-z/]+) \\| (.*) \\|$")
	type doc struct{ sev, meaning string }
	docs := map[string]doc{}
	var order []string
	for _, line := range strings.Split(sec, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			docs[m[1]] = doc{m[2], m[3]}
			order = append(order, m[1])
		}
	}
	var want strings.Builder
	var ids []string
	for _, s := range catalog {
		ids = append(ids, string(s.id))
		var sevs []string
		for _, v := range s.severities {
			sevs = append(sevs, string(v))
		}
		sev := strings.Join(sevs, "/")
		want.WriteString("| `" + string(s.id) + "` | " + sev + " | " + s.meaning + " |\n")
		d, ok := docs[string(s.id)]
		switch {
		case !ok:
			t.Errorf("docs/doctor-json.md does not list %s", s.id)
		case d.sev != sev:
			t.Errorf("docs/doctor-json.md gives %s severity %s; the catalog %s", s.id, d.sev, sev)
		case d.meaning != s.meaning:
			t.Errorf("docs/doctor-json.md says %s means %q; the catalog %q", s.id, d.meaning, s.meaning)
		}
	}
	for _, x := range order {
		if specs[id(x)] == nil {
			t.Errorf("docs/doctor-json.md lists %s, which is not in the catalog", x)
		}
	}
	if !slices.Equal(order, ids) && !t.Failed() {
		t.Errorf("docs/doctor-json.md lists the ids in another order than the catalog")
	}
	if t.Failed() {
		t.Logf("the table from the catalog:\n%s", want.String())
	}
}
