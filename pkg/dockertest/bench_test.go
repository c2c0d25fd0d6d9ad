package dockertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// BenchmarkMariaDBRunToQuery measures `docker run` of the MariaDB image with
// an empty data directory until root's first query over the published TCP
// port succeeds (initialisation included). Reported as s/ready.
func BenchmarkMariaDBRunToQuery(b *testing.B) {
	env := dockertest.New(b)
	env.RequireImage(b, dockertest.MariaDBImage)
	var total time.Duration
	for b.Loop() {
		db := env.StartMariaDB(b, dockertest.MariaDBOptions{Database: "bench"})
		total += db.ReadyAfter
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := db.Remove(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/ready")
}
