package dockerfile

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/linter"
)

// Severity of a finding, from most to least serious.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
	SeverityInfo
	SeverityStyle
	// SeverityNone as a failure threshold never fails.
	SeverityNone
)

var severityNames = []string{"error", "warning", "info", "style", "none"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// ParseSeverity reads error|warning|info|style|none.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: use %s", s, strings.Join(severityNames, "|"))
}

// SeverityNames lists the accepted severities (for flag completion).
func SeverityNames() []string { return append([]string(nil), severityNames...) }

// Rule describes one check. ID is BuildKit's check name where BuildKit has
// the check, hadolint's DLxxxx code for hadolint rules, and a name of ours for
// the Go/scratch rules; Aliases are the other names the same check has (an
// ignore of an alias works too).
type Rule struct {
	ID          string   `json:"id"`
	Severity    Severity `json:"severity"`
	Description string   `json:"description"`
	URL         string   `json:"url,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
	Source      string   `json:"source"`
}

const (
	srcBuildKit = "buildkit"
	srcHadolint = "hadolint"
	srcK8sprep  = "k8sprep"
	hadolintURL = "https://github.com/hadolint/hadolint/wiki/"
)

func bk(name, desc, url string, sev Severity, aliases ...string) Rule {
	return Rule{ID: name, Severity: sev, Description: desc, URL: url, Aliases: aliases, Source: srcBuildKit}
}

func dl(code string, sev Severity, desc string) Rule {
	return Rule{ID: code, Severity: sev, Description: desc, URL: hadolintURL + code, Source: srcHadolint}
}

func kp(id string, sev Severity, desc string) Rule {
	return Rule{ID: id, Severity: sev, Description: desc, Source: srcK8sprep}
}

// Rule IDs of the Go/scratch checks.
const (
	RuleScratchRun            = "ScratchRun"
	RuleScratchShellForm      = "ScratchShellForm"
	RuleScratchNamedUser      = "ScratchNamedUser"
	RuleCgoNotDisabled        = "CgoNotDisabled"
	RuleMissingCABundle       = "MissingCABundle"
	RuleCopyBeforeModDownload = "CopyBeforeModDownload"
	RuleExposeMismatch        = "ExposeMismatch"
	RuleNoDockerignore        = "NoDockerignore"
	RuleRootFinalStage        = "RootFinalStage"
	RuleSecretInValue         = "SecretInValue"
	RuleParseError            = "DL1000"
)

var catalogue = sync.OnceValue(func() map[string]Rule {
	rules := []Rule{
		bk(linter.RuleStageNameCasing.Name, linter.RuleStageNameCasing.Description, linter.RuleStageNameCasing.URL, SeverityWarning),
		bk(linter.RuleFromAsCasing.Name, linter.RuleFromAsCasing.Description, linter.RuleFromAsCasing.URL, SeverityWarning),
		bk(linter.RuleNoEmptyContinuation.Name, linter.RuleNoEmptyContinuation.Description, linter.RuleNoEmptyContinuation.URL, SeverityWarning),
		bk(linter.RuleConsistentInstructionCasing.Name, linter.RuleConsistentInstructionCasing.Description, linter.RuleConsistentInstructionCasing.URL, SeverityStyle),
		bk(linter.RuleDuplicateStageName.Name, linter.RuleDuplicateStageName.Description, linter.RuleDuplicateStageName.URL, SeverityError, "DL3024"),
		bk(linter.RuleReservedStageName.Name, linter.RuleReservedStageName.Description, linter.RuleReservedStageName.URL, SeverityError),
		bk(linter.RuleJSONArgsRecommended.Name, linter.RuleJSONArgsRecommended.Description, linter.RuleJSONArgsRecommended.URL, SeverityWarning, "DL3025"),
		bk(linter.RuleMaintainerDeprecated.Name, linter.RuleMaintainerDeprecated.Description, linter.RuleMaintainerDeprecated.URL, SeverityWarning, "DL4000"),
		bk(linter.RuleUndefinedArgInFrom.Name, linter.RuleUndefinedArgInFrom.Description, linter.RuleUndefinedArgInFrom.URL, SeverityWarning),
		bk(linter.RuleWorkdirRelativePath.Name, linter.RuleWorkdirRelativePath.Description, linter.RuleWorkdirRelativePath.URL, SeverityWarning, "DL3000"),
		bk(linter.RuleMultipleInstructionsDisallowed.Name, linter.RuleMultipleInstructionsDisallowed.Description, linter.RuleMultipleInstructionsDisallowed.URL, SeverityWarning, "DL4003", "DL4004", "DL3012"),
		bk(linter.RuleLegacyKeyValueFormat.Name, linter.RuleLegacyKeyValueFormat.Description, linter.RuleLegacyKeyValueFormat.URL, SeverityWarning),
		bk(linter.RuleRedundantTargetPlatform.Name, linter.RuleRedundantTargetPlatform.Description, linter.RuleRedundantTargetPlatform.URL, SeverityInfo),
		bk(linter.RuleSecretsUsedInArgOrEnv.Name, linter.RuleSecretsUsedInArgOrEnv.Description, linter.RuleSecretsUsedInArgOrEnv.URL, SeverityWarning, "DL3064"),
		bk(linter.RuleInvalidDefaultArgInFrom.Name, linter.RuleInvalidDefaultArgInFrom.Description, linter.RuleInvalidDefaultArgInFrom.URL, SeverityError),
		bk(linter.RuleFromPlatformFlagConstDisallowed.Name, linter.RuleFromPlatformFlagConstDisallowed.Description, linter.RuleFromPlatformFlagConstDisallowed.URL, SeverityWarning, "DL3029"),
		bk(linter.RuleCopyIgnoredFile.Name, linter.RuleCopyIgnoredFile.Description, linter.RuleCopyIgnoredFile.URL, SeverityWarning),
		bk(linter.RuleExposeProtoCasing.Name, linter.RuleExposeProtoCasing.Description, linter.RuleExposeProtoCasing.URL, SeverityWarning),
		bk(linter.RuleExposeInvalidFormat.Name, linter.RuleExposeInvalidFormat.Description, linter.RuleExposeInvalidFormat.URL, SeverityWarning),

		dl("DL1000", SeverityError, "Invalid Dockerfile: it does not parse"),
		dl("DL3002", SeverityWarning, "Last USER should not be root"),
		dl("DL3003", SeverityWarning, "Use WORKDIR to switch to a directory, not cd"),
		dl("DL3004", SeverityError, "Do not use sudo: it has unpredictable TTY and signal behaviour"),
		dl("DL3006", SeverityWarning, "Always tag the version of an image explicitly"),
		dl("DL3007", SeverityWarning, "Using latest is prone to errors: pin a version"),
		dl("DL3008", SeverityWarning, "Pin versions in apt-get install"),
		dl("DL3009", SeverityInfo, "Delete the apt-get lists after installing something (rm -rf /var/lib/apt/lists/* in the same RUN)"),
		dl("DL3011", SeverityError, "Valid UNIX ports range from 0 to 65535"),
		dl("DL3013", SeverityWarning, "Pin versions in pip: pip install <package>==<version> or pip install --requirement <file>"),
		dl("DL3014", SeverityWarning, "Use the -y switch to avoid manual input: apt-get -y install <package>"),
		dl("DL3015", SeverityInfo, "Avoid additional packages by specifying --no-install-recommends"),
		dl("DL3016", SeverityWarning, "Pin versions in npm: npm install <package>@<version>"),
		dl("DL3018", SeverityWarning, "Pin versions in apk add"),
		dl("DL3019", SeverityInfo, "Use the --no-cache switch of apk add"),
		dl("DL3020", SeverityError, "Use COPY instead of ADD for files and folders"),
		dl("DL3021", SeverityError, "COPY with more than 2 arguments requires the last argument to end with /"),
		dl("DL3022", SeverityWarning, "COPY --from should reference a previously defined FROM alias"),
		dl("DL3023", SeverityError, "COPY --from cannot reference its own FROM alias"),
		dl("DL3027", SeverityWarning, "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead"),
		dl("DL3041", SeverityWarning, "Specify version with dnf install -y <package>-<version>"),
		dl("DL3042", SeverityWarning, "Avoid use of cache directory with pip: use pip install --no-cache-dir <package>"),
		dl("DL3047", SeverityInfo, "Avoid use of wget without progress bar: use wget --progress=dot:giga <url> (or -q / -nv)"),
		dl("DL3045", SeverityWarning, "COPY to a relative destination without WORKDIR set"),
		dl("DL3059", SeverityInfo, "Multiple consecutive RUN instructions: consider consolidation"),
		dl("DL3061", SeverityError, "Invalid instruction order: a Dockerfile must begin with FROM, ARG or a comment"),
		dl("DL3060", SeverityInfo, "yarn cache clean missing after yarn install was run"),
		dl("DL3062", SeverityWarning, "Pin versions in go install: use pkg@version"),
		dl("DL4005", SeverityWarning, "Use SHELL to change the default shell, not ln -s ... /bin/sh"),
		dl("DL4006", SeverityWarning, "Set the SHELL option -o pipefail before RUN with a pipe in it"),

		kp(RuleScratchRun, SeverityError, "RUN in a scratch stage: there is no shell or any program to run"),
		kp(RuleScratchShellForm, SeverityError, "Shell-form CMD/ENTRYPOINT/HEALTHCHECK in a scratch stage: /bin/sh does not exist there, use the JSON form"),
		kp(RuleScratchNamedUser, SeverityError, "USER by name in a scratch stage: there is no /etc/passwd, use a numeric UID (65532)"),
		kp(RuleCgoNotDisabled, SeverityError, "A Go binary built with cgo (no CGO_ENABLED=0, in a golang image with a C compiler) is copied into scratch/distroless-static: it is dynamically linked and will not start"),
		kp(RuleMissingCABundle, SeverityWarning, "A scratch final stage without a CA bundle for a Go program whose sources make TLS connections: they will fail (copy /etc/ssl/certs/ca-certificates.crt from the builder)"),
		kp(RuleCopyBeforeModDownload, SeverityWarning, "COPY . . before go mod download: every source change downloads all modules again (copy go.mod/go.sum first)"),
		kp(RuleExposeMismatch, SeverityWarning, "EXPOSE does not match the port the Go program in the final stage listens on (its sources in the build context, or --port)"),
		kp(RuleNoDockerignore, SeverityWarning, "No .dockerignore: .git, local binaries and secrets go into the build context"),
		kp(RuleRootFinalStage, SeverityWarning, "The final stage runs as root: add a numeric non-root USER (runAsNonRoot in Kubernetes)"),
		kp(RuleSecretInValue, SeverityError, "A credential is written into ENV/ARG: it is visible in the image history (docker history) to anyone who pulls it"),
	}
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.ID] = r
	}
	return m
})

// aliasOf maps every alias to its rule ID.
var aliasOf = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for id, r := range catalogue() {
		for _, a := range r.Aliases {
			m[a] = id
		}
	}
	return m
})

// Rules returns the catalogue sorted by ID.
func Rules() []Rule {
	out := make([]Rule, 0, len(catalogue()))
	for _, r := range catalogue() {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// canonical returns the rule ID for a name or alias (case-insensitive for DL codes).
func canonical(name string) string {
	name = strings.TrimSpace(name)
	if id, ok := aliasOf()[strings.ToUpper(name)]; ok {
		return id
	}
	if id, ok := aliasOf()[name]; ok {
		return id
	}
	for id := range catalogue() {
		if strings.EqualFold(id, name) {
			return id
		}
	}
	return name
}
