package nodebed_test

import (
	"context"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/nodebed"
)

// BenchmarkHostBoot: one bare host from `docker run` to an SSH handshake that
// verified its host key, and its memory when idle (make bench).
func BenchmarkHostBoot(b *testing.B) {
	var mem float64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		bed, err := nodebed.New(ctx, nodebed.Options{Prefix: "nbb", Count: 1})
		if err != nil {
			cancel()
			if nodebed.IsUnavailable(err) {
				b.Skip(err)
			}
			b.Fatal(err)
		}
		b.StopTimer()
		m, err := bed.Hosts[0].MemoryBytes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		mem += float64(m) / (1 << 20)
		if err := bed.Stop(); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(mem/float64(b.N), "MiB-idle")
}
