// Package krew renders and checks the krew plugin manifest of
// `kubectl hacluster`.
//
// Krew's own validation package is internal to sigs.k8s.io/krew, so the rules
// of krew v0.5.0 (internal/index/validation) and of its validate-krew-manifest
// command are re-implemented here. Render follows krew-release-bot's template
// semantics (pkg/source/template.go): text/template with the data
// {TagName, Version} and the functions addURIAndSha and indent.
package krew

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind are the only ones krew v0.5.0 accepts.
const (
	APIVersion = "krew.googlecontainertools.github.com/v1alpha2"
	Kind       = "Plugin"
)

// Plugin is a krew plugin manifest (the fields krew v1alpha2 knows).
type Plugin struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   PluginMetadata `json:"metadata"`
	Spec       PluginSpec     `json:"spec"`
}

// PluginMetadata holds the plugin name.
type PluginMetadata struct {
	Name string `json:"name"`
}

// PluginSpec is the body of the manifest.
type PluginSpec struct {
	Version          string     `json:"version"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description,omitempty"`
	Caveats          string     `json:"caveats,omitempty"`
	Homepage         string     `json:"homepage,omitempty"`
	Platforms        []Platform `json:"platforms"`
}

// Platform is one installable archive and the os/arch it serves.
type Platform struct {
	Selector *metav1.LabelSelector `json:"selector"`
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Files    []FileOperation       `json:"files,omitempty"`
	Bin      string                `json:"bin"`
}

// FileOperation copies files from the extracted archive into the install dir.
type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// OSArch is a GOOS/GOARCH pair such as linux/amd64.
type OSArch struct{ OS, Arch string }

func (p OSArch) String() string { return p.OS + "/" + p.Arch }

// KnownPlatforms are the pairs validate-krew-manifest checks selectors against.
var KnownPlatforms = []OSArch{
	{"windows", "386"}, {"windows", "amd64"}, {"windows", "arm64"},
	{"linux", "386"}, {"linux", "amd64"}, {"linux", "arm"}, {"linux", "arm64"}, {"linux", "ppc64le"},
	{"darwin", "386"}, {"darwin", "amd64"}, {"darwin", "arm64"},
}

// Parse decodes a manifest; unknown fields are an error (a typo such as
// `sha265:` would otherwise be dropped silently).
func Parse(b []byte) (*Plugin, error) {
	var p Plugin
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return nil, fmt.Errorf("cannot parse krew manifest: %w", err)
	}
	return &p, nil
}

var (
	nameRE   = regexp.MustCompile(`^[\w-]+$`)
	sha256RE = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// Windows device names, which cannot be file names there.
	reservedRE = regexp.MustCompile(`(?i)^(con|prn|aux|nul|com[1-9]|lpt[1-9])$`)
)

// Validate applies krew's manifest rules (internal/index/validation in krew
// v0.5.0). expectedName is the name the manifest must carry ("" skips that
// check, as `krew install --manifest` does).
func Validate(p *Plugin, expectedName string) error {
	if p.APIVersion != APIVersion {
		return fmt.Errorf("plugin manifest has apiVersion=%q, not supported in this version of krew (try updating plugin index or install a newer version of krew)", p.APIVersion)
	}
	if p.Kind != Kind {
		return fmt.Errorf("plugin manifest has kind=%q, but only %q is supported", p.Kind, Kind)
	}
	name := p.Metadata.Name
	if !nameRE.MatchString(name) || reservedRE.MatchString(name) {
		return fmt.Errorf("plugin name %q is not allowed, must match %s and must not be a Windows device name", name, nameRE)
	}
	if expectedName != "" && name != expectedName {
		return fmt.Errorf("plugin should be named %q, not %q", expectedName, name)
	}
	if p.Spec.ShortDescription == "" {
		return errors.New("should have a short description")
	}
	if strings.ContainsAny(p.Spec.ShortDescription, "\r\n") {
		return errors.New("should not have line breaks in short description")
	}
	if len(p.Spec.Platforms) == 0 {
		return errors.New("should have a platform")
	}
	if p.Spec.Version == "" {
		return errors.New("should have a version")
	}
	if !strings.HasPrefix(p.Spec.Version, "v") {
		return fmt.Errorf("version string %q not starting with 'v'", p.Spec.Version)
	}
	if _, err := version.ParseSemantic(p.Spec.Version); err != nil {
		return fmt.Errorf("failed to parse plugin version: %w", err)
	}
	for i, pl := range p.Spec.Platforms {
		if err := validatePlatform(pl); err != nil {
			return fmt.Errorf("platform[%d] is invalid: %w", i, err)
		}
	}
	return nil
}

func validatePlatform(p Platform) error {
	if p.URI == "" {
		return errors.New("`uri` is unset")
	}
	if p.Sha256 == "" {
		return errors.New("`sha256` sum is unset")
	}
	if !sha256RE.MatchString(p.Sha256) {
		return fmt.Errorf("`sha256` value %q is not valid, must match pattern %s", p.Sha256, sha256RE)
	}
	if p.Bin == "" {
		return errors.New("`bin` field is unset")
	}
	if p.Files != nil {
		if len(p.Files) == 0 {
			return errors.New("`files` is empty, set it")
		}
		for _, f := range p.Files {
			if f.From == "" || f.To == "" {
				return fmt.Errorf("`from` or `to` field in files is unset: %+v", f)
			}
		}
	}
	return validateSelector(p.Selector)
}

func validateSelector(sel *metav1.LabelSelector) error {
	if sel == nil {
		return errors.New("nil selector is not supported")
	}
	if sel.MatchLabels == nil && len(sel.MatchExpressions) == 0 {
		return errors.New("empty selector is not supported")
	}
	if sel.MatchLabels != nil && len(sel.MatchLabels) == 0 {
		return errors.New("`matchLabels` specified but empty")
	}
	if sel.MatchExpressions != nil && len(sel.MatchExpressions) == 0 {
		return errors.New("`matchExpressions` specified but empty")
	}
	allowed := map[string]bool{"os": true, "arch": true}
	for k := range sel.MatchLabels {
		if !allowed[k] {
			return fmt.Errorf("key %q not allowed in selector.matchLabels", k)
		}
	}
	for _, e := range sel.MatchExpressions {
		if !allowed[e.Key] {
			return fmt.Errorf("key %q not allowed in selector.matchExpressions", e.Key)
		}
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return fmt.Errorf("invalid selector: %w", err)
	}
	return nil
}

// Matches reports whether platform p's selector selects the os/arch pair.
func (p Platform) Matches(pair OSArch) bool {
	s, err := metav1.LabelSelectorAsSelector(p.Selector)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set{"os": pair.OS, "arch": pair.Arch})
}

// Covered returns, in KnownPlatforms order, every pair some platform serves.
func (p *Plugin) Covered() []OSArch {
	var out []OSArch
	for _, pair := range KnownPlatforms {
		for _, pl := range p.Spec.Platforms {
			if pl.Matches(pair) {
				out = append(out, pair)
				break
			}
		}
	}
	return out
}

// ValidateFile reads a manifest file and applies Validate plus the checks
// validate-krew-manifest adds: a .yaml file named after the plugin, every
// platform matching a supported os/arch, and no os/arch matched twice.
func ValidateFile(file string) (*Plugin, error) {
	if filepath.Ext(file) != ".yaml" {
		return nil, fmt.Errorf("expected manifest extension %q but found %q", ".yaml", filepath.Ext(file))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := Parse(b)
	if err != nil {
		return nil, err
	}
	if err := Validate(p, strings.TrimSuffix(filepath.Base(file), ".yaml")); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := CheckPlatforms(p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// CheckPlatforms is validate-krew-manifest's selector check: each platform
// must select at least one supported os/arch and no pair may be selected by
// two platforms (krew would silently take the first).
func CheckPlatforms(p *Plugin) error {
	for i, pl := range p.Spec.Platforms {
		n := 0
		for _, pair := range KnownPlatforms {
			if pl.Matches(pair) {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("platform[%d] (%s) matches none of the supported os/arch pairs", i, pl.URI)
		}
	}
	for _, pair := range KnownPlatforms {
		var hits []int
		for i, pl := range p.Spec.Platforms {
			if pl.Matches(pair) {
				hits = append(hits, i)
			}
		}
		if len(hits) > 1 {
			return fmt.Errorf("overlapping platform selectors: %s is matched by platforms %v", pair, hits)
		}
	}
	return nil
}

// ShaFunc returns the sha256 (lowercase hex) of the asset at uri.
type ShaFunc func(uri string) (string, error)

// Render executes a krew-release-bot template (.krew.yaml) for tag.
// addURIAndSha "<url template>" .TagName renders the URL with {TagName,
// Version}, asks sha for its checksum and emits "uri: ...\n    sha256: ..."
// (the sha256 line indented by 4 spaces, as the bot does); indent N re-indents
// that to N spaces.
func Render(tmpl []byte, tag string, sha ShaFunc) ([]byte, error) {
	data := templateData{TagName: tag, Version: versionOfTag(tag)}
	t, err := template.New(".krew.yaml").Option("missingkey=error").Funcs(template.FuncMap{
		"indent": indent,
		"addURIAndSha": func(url, tag string) (string, error) {
			ut, err := template.New("url").Option("missingkey=error").Parse(url)
			if err != nil {
				return "", err
			}
			var u bytes.Buffer
			if err := ut.Execute(&u, templateData{TagName: tag, Version: versionOfTag(tag)}); err != nil {
				return "", err
			}
			sum, err := sha(u.String())
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", u.String(), sum), nil
		},
	}).Parse(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("cannot parse krew template: %w", err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("cannot render krew template: %w", err)
	}
	return out.Bytes(), nil
}

type templateData struct {
	TagName string
	Version string
}

var versionRE = regexp.MustCompile(`\d+(\.\d+)+`)

// versionOfTag is the bot's .Version: the dotted number inside the tag.
func versionOfTag(tag string) string {
	if v := versionRE.FindString(tag); v != "" {
		return v
	}
	return tag
}

// indent is the bot's indent: undo addURIAndSha's fixed 4-space sha256
// indent, prefix every line with n spaces, trim the result.
func indent(n int, s string) string {
	s = strings.ReplaceAll(s, "    sha256:", "sha256:")
	pad := strings.Repeat(" ", n)
	return strings.TrimSpace(pad + strings.ReplaceAll(s, "\n", "\n"+pad))
}

// LocalSha resolves an asset URL to the archive of the same base name in
// distDir and hashes it, so that a manifest can be rendered before release.
func LocalSha(distDir string) ShaFunc {
	return func(uri string) (string, error) {
		file := filepath.Join(distDir, path.Base(uri))
		return FileSha256(file)
	}
}

// FileSha256 returns the lowercase hex sha256 of a file.
func FileSha256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("no archive for this platform (run `make dist`): %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
