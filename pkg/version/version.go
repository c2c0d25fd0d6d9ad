// Package version holds the build information stamped into both plugins with
// -ldflags "-X github.com/hacluster/hacluster/pkg/version.Version=...".
package version

import (
	"fmt"
	"runtime"
)

// Set at link time by the Makefile from `git describe`.
var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// ModulePath is the Go module path, also used for the project homepage.
const ModulePath = "github.com/hacluster/hacluster"

// Homepage is the project URL shown in plugin metadata and the krew manifest.
const Homepage = "https://" + ModulePath

// Info is the machine-readable form of the version, printed by `version -o json`.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the version information of the running binary.
func Get() Info {
	return Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// Line is what `version` prints for people: "NAME VERSION (commit ..., built
// ..., GOVERSION, OS/ARCH)", without the newline.
func (i Info) Line(name string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s, %s)", name, i.Version, i.Commit, i.Date, i.GoVersion, i.Platform)
}
