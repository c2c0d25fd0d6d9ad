package addons_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// BenchmarkInstallCalico measures a server-side-apply install of the Calico
// fixture (3 CRDs + 11 objects, dry-run pass + apply pass + waits) on the
// real API server of the HA-shaped bed: the first install, then no-op
// re-runs per iteration.
func BenchmarkInstallCalico(b *testing.B) {
	ctx := context.Background()
	bed := testbed.Start(b, testbed.Options{Components: true})
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "calico", "calico.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cal, _ := addons.Builtin().Get("calico")
	ms := []addons.Manifest{{File: "calico.yaml", Origin: "testdata", Data: data}}
	cl, err := addons.NewCluster(bed.Config)
	if err != nil {
		b.Fatal(err)
	}
	opts := addons.InstallOptions{Wait: true, Timeout: 2 * time.Minute}
	start := time.Now()
	if _, err := cl.Install(ctx, cal, ms, opts); err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := cl.Install(ctx, cal, ms, opts)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range res.Objects {
			if o.Action != "unchanged" {
				b.Fatalf("re-run changed %s: %s", o.Ref, o.Action)
			}
		}
	}
	b.ReportMetric(float64(first.Milliseconds()), "first-install-ms")
}
