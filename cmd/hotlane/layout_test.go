package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayout keeps the arrows between Hotlane's packages as the README's
// layout section draws them: data flows one way (cmd wires server and jobs
// and hands them the store; both use feedback and model; feedback uses
// model; model uses nothing of ours), and only feedback/store and
// migrations talk to a database. A package missing from the table fails
// the test: a new package says where it stands.
func TestLayout(t *testing.T) {
	const mod = "github.com/hotlane/hotlane/"
	allowed := map[string][]string{
		"cmd/hotlane":              {"cmd/hotlane/loadgen", "server", "jobs", "feedback/store", "feedback", "model", "templates"},
		"cmd/hotlane/loadgen":      {},
		"server":                   {"feedback", "model", "templates"},
		"templates":                {},
		"jobs":                     {"feedback", "model"},
		"feedback":                 {"model"},
		"feedback/feedbacktest":    {},
		"feedback/store":           {"feedback", "model", "migrations"},
		"feedback/store/storetest": {},
		"migrations":               {},
		"model":                    {},
	}
	// Database drivers and ORMs, and the packages that may use them.
	sqlImport := func(p string) bool {
		return p == "database/sql" || strings.HasPrefix(p, "database/sql/") || strings.HasPrefix(p, "gorm.io/") ||
			strings.HasPrefix(p, "github.com/jackc/pgx") || strings.HasPrefix(p, "github.com/glebarez/")
	}
	sqlAllowed := map[string]bool{"feedback/store": true, "feedback/store/storetest": true, "migrations": true}

	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		want, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s is not in the layout table: add it to TestLayout and to the README's layout section", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			if own, ok := strings.CutPrefix(imp, mod); ok {
				if !slices.Contains(want, own) {
					t.Errorf("%s imports %s; it may import only %v of Hotlane's packages", pkg, own, want)
				}
				continue
			}
			if sqlImport(imp) && !sqlAllowed[pkg] {
				t.Errorf("%s imports %s: only feedback/store and migrations talk to the database", pkg, imp)
			}
		}
	}
	if seen != len(allowed) {
		t.Errorf("go list found %d of the %d packages in the layout table", seen, len(allowed))
	}
}
