package main

import (
	"os"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/cmd/docker-k8sprep/internal/fastpath"
)

// TestFastPathSameOutput: what the fast path writes is what the full command
// tree writes, byte for byte, for every argv it answers.
func TestFastPathSameOutput(t *testing.T) {
	cfg := "DOCKER_CONFIG=" + t.TempDir()
	for _, c := range []struct {
		fromDocker bool
		args       string
	}{
		{false, "docker-cli-plugin-metadata"},
		{true, "docker-cli-plugin-metadata"},
		{false, "version"},
		{false, "k8sprep version"},
		{true, "k8sprep version"},
		{true, "k8sprep version -o json"},
		{false, "version -o json"},
		{false, "version --output json"},
		{false, "version --output=json"},
		{false, "version -o=json"},
		{false, "version -ojson"},
		{false, "version -o table"},
		{false, "version --output=table"},
	} {
		args := strings.Fields(c.args)
		if fastpath.Answer(args, c.fromDocker) == nil {
			t.Errorf("%q (fromDocker=%v): the fast path does not answer it", c.args, c.fromDocker)
			continue
		}
		orig := "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="
		if c.fromDocker {
			orig += "docker"
		}
		env := []string{"HACLUSTER_TEST_MAIN=1", cfg, orig}
		fast := runCmd(t, env, os.Args[0], args...)
		slow := runCmd(t, append(env, fastpath.DisableEnv+"=1"), os.Args[0], args...)
		if fast != slow || fast.code != 0 || fast.stdout == "" {
			t.Errorf("%q (fromDocker=%v):\nfast path: %+v\nfull path: %+v", c.args, c.fromDocker, fast, slow)
		}
	}
}
