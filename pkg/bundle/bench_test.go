package bundle_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hacluster/hacluster/pkg/bundle"
)

// Bundle builds from the upstream in a box (`make bench` runs these):
// cold (an empty cache: every release file and image downloaded from the
// box over loopback), warm (all cached: the archive is written), warm with
// zstd, and verify. Each reports the archive's size and what was
// downloaded.
func BenchmarkBundleBuildCold(b *testing.B) { benchBuild(b, false, "bundle.tar") }
func BenchmarkBundleBuildWarm(b *testing.B) { benchBuild(b, true, "bundle.tar") }
func BenchmarkBundleBuildWarmZstd(b *testing.B) {
	benchBuild(b, true, "bundle.tar.zst")
}

func benchBuild(b *testing.B, warm bool, name string) {
	up := startUpstream(b)
	ctx := context.Background()
	dir := b.TempDir()
	cache := b.TempDir()
	if warm {
		if _, err := bundle.Build(ctx, boxOptions(up, cache, filepath.Join(dir, "fill.tar"), b.Logf)); err != nil {
			b.Fatal(err)
		}
	}
	var res *bundle.Result
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := cache
		if !warm {
			c = filepath.Join(dir, "cache", string(rune('a'+i%26)))
			os.RemoveAll(c)
		}
		out := filepath.Join(dir, name)
		os.Remove(out)
		b.StartTimer()
		var err error
		if res, err = bundle.Build(ctx, boxOptions(up, c, out, func(string, ...any) {})); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if !warm {
			os.RemoveAll(c)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(res.Size)/1e6, "bundle-MB")
	b.ReportMetric(float64(res.Downloaded)/1e6, "downloaded-MB")
}

func BenchmarkBundleVerify(b *testing.B) {
	up := startUpstream(b)
	out := filepath.Join(b.TempDir(), "bundle.tar")
	res, err := bundle.Build(context.Background(), boxOptions(up, b.TempDir(), out, func(string, ...any) {}))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := bundle.Verify(out); err != nil {
			b.Fatal(err)
		}
	}
}
