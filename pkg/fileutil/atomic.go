// Package fileutil writes files the way every command of both plugins must:
// atomically, so that nobody ever sees half a file.
package fileutil

import (
	"os"
	"path/filepath"
)

// WriteAtomic writes data to a temporary file in path's folder, with mode
// perm set before any byte is written (secrets are never readable by others,
// not even briefly), syncs it and renames it over path.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
