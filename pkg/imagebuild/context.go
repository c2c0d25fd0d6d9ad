// Package imagebuild builds an image through the Docker Engine API (the
// classic builder, which every engine since 1.x has): it tars the build
// context honouring .dockerignore, streams the build output, and reports the
// image's ID, size and layer count. It knows nothing of cobra.
package imagebuild

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ContextStats counts what went into a build context.
type ContextStats struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// ReadDockerignore returns the patterns of dir/.dockerignore (none when the
// file is missing).
func ReadDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return p, nil
}

// WriteContext writes dir as a tar stream to w, leaving out what the
// .dockerignore patterns exclude. The Dockerfile (path relative to dir) and
// .dockerignore are always sent, as the docker CLI does. Entries are in
// lexical order with owner 0:0, so the same tree gives the same stream.
func WriteContext(w io.Writer, dir, dockerfile string, patterns []string) (ContextStats, error) {
	var st ContextStats
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return st, fmt.Errorf(".dockerignore: %w", err)
	}
	keep := map[string]bool{".dockerignore": true}
	if dockerfile != "" {
		keep[filepath.ToSlash(filepath.Clean(dockerfile))] = true
	}
	tw := tar.NewWriter(w)
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		parentInfo := parents[path.Dir(rel)]
		excluded, info, err := pm.MatchesUsingParentResults(rel, parentInfo)
		if err != nil {
			return err
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if excluded && !keep[rel] {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			// With "!" patterns a child may come back; walk on but skip the entry.
			return nil
		}
		return addEntry(tw, p, rel, d, &st)
	})
	if err != nil {
		return st, err
	}
	return st, tw.Close()
}

func addEntry(tw *tar.Writer, p, rel string, d fs.DirEntry, st *ContextStats) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	} else if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil // sockets, devices, fifos have no place in a context
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{} // reading a file changes its atime
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	st.Files++
	st.Bytes += n
	return nil
}
