// Command krewmanifest renders the krew-release-bot template (.krew.yaml)
// against the local dist/ archives into a krew manifest, the way the bot does
// on a release, except that addURIAndSha hashes dist/<asset name> instead of
// downloading the asset. The result is checked with krew's rules before it
// is written (atomically).
//
//	go run ./hack/krewmanifest -template .krew.yaml -dist dist -out plugins/hacluster.yaml -tag v0.1.0
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/hacluster/hacluster/krew"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

func main() {
	tmpl := flag.String("template", ".krew.yaml", "krew-release-bot template")
	dist := flag.String("dist", "dist", "directory with the release archives (make dist)")
	out := flag.String("out", "plugins/hacluster.yaml", "manifest to write (- for stdout)")
	tag := flag.String("tag", os.Getenv("VERSION"), "release tag, v-prefixed (default $VERSION)")
	flag.Parse()
	if err := run(*tmpl, *dist, *out, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "krewmanifest:", err)
		os.Exit(1)
	}
}

func run(tmplFile, dist, out, tag string) error {
	if tag == "" {
		return fmt.Errorf("no tag: pass -tag v1.2.3 or set VERSION")
	}
	tmpl, err := os.ReadFile(tmplFile)
	if err != nil {
		return err
	}
	b, err := krew.Render(tmpl, tag, krew.LocalSha(dist))
	if err != nil {
		return err
	}
	p, err := krew.Parse(b)
	if err != nil {
		return err
	}
	if err := krew.Validate(p, "hacluster"); err != nil {
		return fmt.Errorf("rendered manifest is invalid: %w", err)
	}
	if err := krew.CheckPlatforms(p); err != nil {
		return fmt.Errorf("rendered manifest is invalid: %w", err)
	}
	b = withHeader(b, tag)
	if out == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := fileutil.WriteAtomic(out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "krewmanifest: wrote %s (%s, %d platforms)\n", out, tag, len(p.Spec.Platforms))
	return nil
}

// withHeader swaps the template's leading comment for one that says where the
// manifest came from.
func withHeader(b []byte, tag string) []byte {
	for bytes.HasPrefix(b, []byte("#")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return b
		}
		b = b[i+1:]
	}
	h := fmt.Sprintf("# Rendered from .krew.yaml by `make krew-manifest` for %s: each sha256 is that of\n"+
		"# the archive of the same name built by `make dist`. Do not edit; re-render.\n", tag)
	return append([]byte(h), b...)
}
