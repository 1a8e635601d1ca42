package deploy

import (
	"path/filepath"
	"testing"
)

// TestExamplesValidate: every config in examples/ passes the built binary's validate.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob(repoPath("examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			requireValid(t, readFile(t, path), nil)
		})
	}
}
