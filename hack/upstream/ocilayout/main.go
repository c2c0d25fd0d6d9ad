// Command ocilayout turns the docker-archive tarballs hack/upstream/build.sh
// saves into one OCI image layout (images/oci), each image annotated with
// the name kubeadm asks for (org.opencontainers.image.ref.name). Layers are
// compressed and hashed once, here, so that pkg/upstream's registry starts
// in well under a second: it only reads manifests and pushes blobs the
// registry does not have yet. `ctr images import` reads the same layout.
//
//	go run ./hack/upstream/ocilayout -images .cache/upstream/images
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefAnnotation is where the image's name goes.
const RefAnnotation = "org.opencontainers.image.ref.name"

func main() {
	dir := flag.String("images", "", "directory with images.txt and <name>.tar files")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "ocilayout: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if dir == "" {
		return fmt.Errorf("-images is required")
	}
	f, err := os.Open(filepath.Join(dir, "images.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	tmp := filepath.Join(dir, ".oci.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return fmt.Errorf("images.txt: bad line %q", sc.Text())
		}
		img, err := tarball.ImageFromPath(filepath.Join(dir, fields[0]+".tar"), nil)
		if err != nil {
			return fmt.Errorf("%s: %w", fields[0], err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefAnnotation: fields[1]})); err != nil {
			return fmt.Errorf("%s: %w", fields[1], err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	out := filepath.Join(dir, "oci")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Printf("ocilayout: %d images in %s\n", n, out)
	return nil
}
