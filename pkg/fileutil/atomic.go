// Package fileutil writes files the way every command of both plugins must:
// atomically, so that nobody ever sees half a file.
package fileutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
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

// ReplaceWithBackup writes data over the file at path atomically, keeping
// its mode, after copying what it held to path.hacluster-<UTC time>.bak. It
// returns the backup's path ("" when the file held data already).
func ReplaceWithBackup(path string, data []byte) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bytes.Equal(old, data) {
		return "", nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	backup := fmt.Sprintf("%s.hacluster-%s.bak", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if err := WriteAtomic(backup, old, st.Mode().Perm()); err != nil {
		return "", fmt.Errorf("backup of %s: %w (not changed)", path, err)
	}
	return backup, WriteAtomic(path, data, st.Mode().Perm())
}
