package danube

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeQuickStartFollowsTheExamples keeps the README's quick-start
// pipelines in step with examples/, which test/e2e (TestExamples) runs
// through Conduit: each YAML block after a `<!-- quickstart: FILE -->` marker
// must be that example with lines left out. Every line of the block, indented
// as in the example, is a line of the example (its comment dropped); only the
// url differs, a literal address in the README and ${DANUBE_URL} in the
// example.
func TestReadmeQuickStartFollowsTheExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`<!-- quickstart: (\S+) -->`)
	lines := strings.Split(string(readme), "\n")
	blocks := 0
	for i, line := range lines {
		m := marker.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		blocks++
		block := yamlBlockAfter(t, lines, i)
		example := exampleLines(t, m[1])
		for _, l := range block {
			if before, _, ok := strings.Cut(l, "url: "); ok && strings.TrimSpace(before) == "" {
				l = before + "url: ${DANUBE_URL}"
			}
			if !example[l] {
				t.Errorf("README quick start line %q is not in %s", l, m[1])
			}
		}
	}
	if blocks != 2 {
		t.Errorf("the README's quick start has %d pipelines marked with <!-- quickstart: FILE -->, want 2", blocks)
	}
}

// yamlBlockAfter returns the lines of the first ```yaml block after line i,
// without the indentation of its opening fence.
func yamlBlockAfter(t *testing.T, lines []string, i int) []string {
	t.Helper()
	for j := i + 1; j < len(lines); j++ {
		indent, rest, _ := strings.Cut(lines[j], "```")
		if rest != "yaml" || strings.TrimSpace(indent) != "" {
			continue
		}
		var block []string
		for _, l := range lines[j+1:] {
			if strings.TrimSpace(l) == "```" {
				return block
			}
			if strings.TrimSpace(l) == "" {
				continue
			}
			block = append(block, strings.TrimPrefix(l, indent))
		}
		break
	}
	t.Fatalf("no ```yaml block after README line %d", i+1)
	return nil
}

// exampleLines returns the lines of an example pipeline, comments dropped.
func exampleLines(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if c := strings.Index(l, " #"); c >= 0 {
			l = l[:c]
		}
		l = strings.TrimRight(l, " ")
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			set[l] = true
		}
	}
	return set
}
