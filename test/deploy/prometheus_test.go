package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// coreMetrics are the collector's own metrics the rules use (exporterhelper's queue
// gauges); TestImage checks that the built collector exposes them.
var coreMetrics = []string{"otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"}

// TestPrometheusRules: the example alert rules parse, each has what Prometheus
// requires, and every metric they use is one the components document (their
// documentation.md) or a collector metric the image test saw exposed.
func TestPrometheusRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
	if err := yaml.UnmarshalStrict([]byte(readFile(t, repoPath("deploy", "prometheus", "otelcol-defender-ci.rules.yaml"))), &rules); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, name := range coreMetrics {
		known[name] = true
	}
	docs, _ := filepath.Glob(repoPath("*", "*", "documentation.md"))
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^### (otelcol_\w+)`).FindAllStringSubmatch(string(b), -1) {
			known[m[1]] = true
		}
	}
	if len(known) <= len(coreMetrics) {
		t.Fatal("no documented component metrics found")
	}
	used := regexp.MustCompile(`otelcol_\w+`)
	count := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			count++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %+v needs alert, expr, a severity label and a summary", r)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("%s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			for _, name := range used.FindAllString(r.Expr, -1) {
				if !known[name] {
					t.Errorf("%s uses %s, which no component documents", r.Alert, name)
				}
			}
		}
	}
	if count < 6 {
		t.Fatalf("only %d rules", count)
	}
}
