package fileutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// RepoRoot walks up from the working directory to the hacluster checkout (the
// folder whose go.mod declares module github.com/hacluster/hacluster): where
// test beds find the artifacts `make` cached under .cache/.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/hacluster/hacluster\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the hacluster checkout above the working directory")
		}
		dir = parent
	}
}
