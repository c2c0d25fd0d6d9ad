package testbed

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartToReadyz: etcd + kube-apiserver from nothing to /readyz, then stop.
func BenchmarkStartToReadyz(b *testing.B) {
	if _, err := BinDir(); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		bed, err := New(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bed.Stop()
		b.StartTimer()
	}
}

// BenchmarkHAShapeReady: all five processes started and the healthy HA shape
// settled (nodes Ready via kwok, kube-proxy and CoreDNS pods Ready). Reports
// the resident memory of the bed's processes once it is ready.
func BenchmarkHAShapeReady(b *testing.B) {
	if _, err := BinDir(); err != nil {
		b.Skip(err)
	}
	var rss float64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		bed, err := New(ctx, Options{Components: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bed.ApplyHAShape(ctx, Shape{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rss = 0
		for _, pid := range bed.PIDs() {
			rss += float64(rssKiB(pid)) / 1024
		}
		bed.Stop()
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(rss, "rss-MiB")
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
