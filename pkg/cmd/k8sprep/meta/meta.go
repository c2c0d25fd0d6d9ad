// Package meta is the Docker CLI plugin metadata of `docker k8sprep`. It
// imports only docker/cli's metadata types and pkg/version (both leaves of the
// standard library), so the start-up fast path of cmd/docker-k8sprep can use
// it before the packages of the real commands are initialised.
package meta

import (
	"github.com/docker/cli/cli-plugins/metadata"

	"github.com/hacluster/hacluster/pkg/version"
)

// Name is the name the plugin is run under by the Docker CLI: `docker k8sprep`.
const Name = "k8sprep"

// Binary is the name of the plugin's executable, which `version` prints.
const Binary = metadata.NamePrefix + Name

// Metadata is what `docker-k8sprep docker-cli-plugin-metadata` prints.
func Metadata() metadata.Metadata {
	return metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "hacluster project",
		Version:          version.Version,
		ShortDescription: "Dockerfiles, builds and app+MySQL stacks for Go apps, ready for Kubernetes",
		URL:              version.Homepage,
	}
}
