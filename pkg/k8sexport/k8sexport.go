// Package k8sexport turns a stack (pkg/stack) into Kubernetes manifests: a
// Secret with the MySQL passwords, MySQL as a StatefulSet with a PVC template
// and a headless Service on 3306, the rewritten app config (pointing at that
// Service's DNS name and carrying the password) as a Secret mounted where the
// app reads it, the app as a Deployment with probes, resources and a non-root
// security context, and the app's Service. The app gets its password the way
// compose-run gives it: in the config file, else in the file DB_PASSWORD_FILE
// names (and DB_PASSWORD only when the stack asks for it).
// It knows nothing of cobra and does not link client-go.
package k8sexport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/stack"
)

// Options tune the export.
type Options struct {
	// ServiceType of the app's Service: ClusterIP (default), NodePort or LoadBalancer.
	ServiceType corev1.ServiceType
	// Replicas of the app Deployment (default 1).
	Replicas int32
	// Storage requested by MySQL's PVC (default 1Gi); StorageClass "" uses the cluster default.
	Storage      string
	StorageClass string
}

// ServiceTypes lists the accepted --service-type values.
var ServiceTypes = []string{string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeNodePort), string(corev1.ServiceTypeLoadBalancer)}

// ParseServiceType accepts a Service type in any letter case.
func ParseServiceType(s string) (corev1.ServiceType, error) {
	if s == "" {
		return corev1.ServiceTypeClusterIP, nil
	}
	for _, t := range ServiceTypes {
		if strings.EqualFold(s, t) {
			return corev1.ServiceType(t), nil
		}
	}
	return "", fmt.Errorf("unknown service type %q: use %s", s, strings.Join(ServiceTypes, ", "))
}

// ConfigSecretFile is the file of the Secret with the app's rewritten config.
const ConfigSecretFile = "30-app-config-secret.yaml"

// obsoleteFiles were written by earlier versions and are removed by Write
// when they carry the stack's labels: 30-app-configmap.yaml held the
// config without its password, which the app then lacked.
var obsoleteFiles = []string{"30-app-configmap.yaml"}

// Manifest is one object and the file it goes to.
type Manifest struct {
	File   string `json:"file"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Object any    `json:"-"`
	// Sensitive files (the Secret) are written with mode 0600.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Names of the exported objects.
func secretName(s *stack.Stack) string { return s.Name + "-mysql" }
func mysqlName(s *stack.Stack) string  { return s.Name + "-mysql" }
func configName(s *stack.Stack) string { return s.Name + "-config" }
func appName(s *stack.Stack) string    { return s.Name + "-app" }

// Secret keys; the file names match the ones compose-run copies into the container.
const (
	keyPassword     = "mysql-password"
	keyRootPassword = "mysql-root-password"
	secretsMount    = "/run/k8sprep"
	// appPasswordFile is stack.AppPasswordFile: DB_PASSWORD_FILE without a config file.
	appPasswordFile = stack.AppPasswordFile
	appUID          = 65532 // "nonroot" of distroless/static; scratch images have no user database
)

func labelsFor(s *stack.Stack, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       s.Name,
		"app.kubernetes.io/component":  component,
		"app.kubernetes.io/managed-by": "docker-k8sprep",
	}
}

// MySQLHost is the DNS name the app uses for MySQL inside the namespace.
func MySQLHost(s *stack.Stack) string { return mysqlName(s) }

// FromStack is Build with what the stack's files hold: its password files
// (made with random passwords when missing, as compose-run makes them) and
// its app config file when it has one. It returns the passwords too, for
// callers that check where they went.
func FromStack(s *stack.Stack, o Options) ([]Manifest, *stack.Secrets, error) {
	var config []byte
	if s.App.Config != nil {
		var err error
		if config, err = os.ReadFile(s.App.Config.File); err != nil {
			return nil, nil, fmt.Errorf("app config: %w", err)
		}
	}
	sec, err := s.EnsureSecrets()
	if err != nil {
		return nil, nil, err
	}
	ms, err := Build(s, sec.Password, sec.RootPassword, config, o)
	return ms, sec, err
}

// Build returns the manifests of s. password and rootPassword come from the
// stack's password files; config is the user's config file content (nil when
// the stack has none).
func Build(s *stack.Stack, password, rootPassword string, config []byte, o Options) ([]Manifest, error) {
	if o.ServiceType == "" {
		o.ServiceType = corev1.ServiceTypeClusterIP
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Storage == "" {
		o.Storage = "1Gi"
	}
	storage, err := resource.ParseQuantity(o.Storage)
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", o.Storage, err)
	}
	if len(s.App.Ports) == 0 {
		return nil, fmt.Errorf("the app has no port")
	}
	appPort := int32(s.App.Ports[0].Container)

	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: secretName(s), Labels: labelsFor(s, "database")},
		Type:       corev1.SecretTypeOpaque,
		// data, not stringData: a second `kubectl apply` then reports "unchanged".
		Data: map[string][]byte{keyPassword: []byte(password), keyRootPassword: []byte(rootPassword)},
	}

	mysqlLabels := labelsFor(s, "database")
	mysqlSvc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: mysqlName(s), Labels: mysqlLabels},
		Spec: corev1.ServiceSpec{
			// Headless: one MySQL Pod needs no virtual IP; the name resolves to
			// the Pod and it is the StatefulSet's governing Service.
			ClusterIP: corev1.ClusterIPNone,
			Selector:  mysqlLabels,
			Ports:     []corev1.ServicePort{{Name: "mysql", Port: 3306, TargetPort: intstr.FromString("mysql")}},
		},
	}
	tcpProbe := func(initial, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("mysql")}},
			InitialDelaySeconds: initial, PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 3,
		}
	}
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Name: mysqlName(s), Labels: mysqlLabels},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: mysqlName(s),
			Replicas:    ptr(int32(1)),
			Selector:    &metav1.LabelSelector{MatchLabels: mysqlLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: mysqlLabels},
				Spec: corev1.PodSpec{
					// The MySQL images start as root to own the data folder and
					// then drop to the mysql user themselves.
					SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:  "mysql",
						Image: s.MySQL.Image,
						Ports: []corev1.ContainerPort{{Name: "mysql", ContainerPort: 3306}},
						Env: []corev1.EnvVar{
							{Name: "MYSQL_DATABASE", Value: s.MySQL.Database},
							{Name: "MYSQL_USER", Value: s.MySQL.User},
							{Name: "MYSQL_PASSWORD_FILE", Value: secretsMount + "/" + keyPassword},
							{Name: "MYSQL_ROOT_PASSWORD_FILE", Value: secretsMount + "/" + keyRootPassword},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "data", MountPath: "/var/lib/mysql"},
							{Name: "credentials", MountPath: secretsMount, ReadOnly: true},
						},
						// The images' first-start server listens on no TCP port,
						// so an open 3306 means the real server is up.
						ReadinessProbe: tcpProbe(5, 5, 3),
						LivenessProbe:  tcpProbe(60, 10, 6),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
					}},
					Volumes: []corev1.Volume{{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
						SecretName: secretName(s), DefaultMode: ptr(int32(0o444)),
					}}}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: mysqlLabels},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: nonEmpty(o.StorageClass),
					VolumeMode:       ptr(corev1.PersistentVolumeFilesystem),
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: storage}},
				},
				// The API server stores these two defaults in the template; written
				// out, a second `kubectl apply` finds nothing to change.
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			}},
		},
	}

	appLabels := labelsFor(s, "app")
	container := corev1.Container{
		Name:  "app",
		Image: s.App.Image,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
		Env: []corev1.EnvVar{
			{Name: "DB_HOST", Value: MySQLHost(s)},
			{Name: "DB_PORT", Value: "3306"},
			{Name: "DB_USER", Value: s.MySQL.User},
			{Name: "DB_NAME", Value: s.MySQL.Database},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: s.App.HealthPath, Port: intstr.FromString("http")}},
			PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3,
		},
		LivenessProbe: &corev1.Probe{
			// Liveness looks at the TCP port only: a database outage makes
			// the app unready, it must not make the kubelet restart it.
			ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
			InitialDelaySeconds: 10, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	for _, k := range sortedKeys(s.App.Env) {
		container.Env = append(container.Env, corev1.EnvVar{Name: k, Value: s.App.Env[k]})
	}
	podSpec := corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(appUID)),
			RunAsGroup:     ptr(int64(appUID)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		AutomountServiceAccountToken: ptr(false),
	}
	var out []Manifest
	out = append(out, Manifest{File: "10-mysql-secret.yaml", Kind: "Secret", Name: secret.Name, Object: secret, Sensitive: true})
	out = append(out, Manifest{File: "20-mysql-service.yaml", Kind: "Service", Name: mysqlSvc.Name, Object: mysqlSvc})
	out = append(out, Manifest{File: "21-mysql-statefulset.yaml", Kind: "StatefulSet", Name: sts.Name, Object: sts})
	if s.App.Config != nil && config != nil {
		// The rewritten config carries the password, as compose-run's copy
		// does, so the whole file is a Secret key, mounted (subPath) at the
		// one path the app reads it from; no ConfigMap ever holds it.
		rewritten, err := s.RewriteConfig(config, MySQLHost(s), 3306, password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.App.Config.File, err)
		}
		key := filepath.Base(s.App.Config.File)
		cs := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: configName(s), Labels: appLabels},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{key: rewritten},
		}
		out = append(out, Manifest{File: ConfigSecretFile, Kind: "Secret", Name: cs.Name, Object: cs, Sensitive: true})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: s.App.Config.MountPath, SubPath: key, ReadOnly: true})
		podSpec.Volumes = append(podSpec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			// 0444: the app runs as uid 65532, not as the files' owner (root).
			SecretName: cs.Name, DefaultMode: ptr(int32(0o444)),
		}}})
	} else {
		// No config file: the password is the file DB_PASSWORD_FILE names,
		// from the same Secret as MySQL's; DB_PASSWORD only when asked for.
		container.Env = append(container.Env, corev1.EnvVar{Name: "DB_PASSWORD_FILE", Value: appPasswordFile})
		if s.App.PasswordEnv {
			container.Env = append(container.Env, corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secretName(s)}, Key: keyPassword,
			}}})
		}
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "db-password", MountPath: path.Dir(appPasswordFile), ReadOnly: true})
		podSpec.Volumes = append(podSpec.Volumes, corev1.Volume{Name: "db-password", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secretName(s), DefaultMode: ptr(int32(0o444)),
			Items: []corev1.KeyToPath{{Key: keyPassword, Path: path.Base(appPasswordFile)}},
		}}})
	}
	podSpec.Containers = []corev1.Container{container}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: appName(s), Labels: appLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: podSpec},
		},
	}
	out = append(out, Manifest{File: "31-app-deployment.yaml", Kind: "Deployment", Name: dep.Name, Object: dep})
	appSvc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: appName(s), Labels: appLabels},
		Spec: corev1.ServiceSpec{
			Type:     o.ServiceType,
			Selector: appLabels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: appPort, TargetPort: intstr.FromString("http")}},
		},
	}
	out = append(out, Manifest{File: "32-app-service.yaml", Kind: "Service", Name: appSvc.Name, Object: appSvc})
	return out, nil
}

// Explain says why the Services look the way they do, for people.
func Explain(s *stack.Stack, o Options) []string {
	t := o.ServiceType
	if t == "" {
		t = corev1.ServiceTypeClusterIP
	}
	lines := []string{
		fmt.Sprintf("MySQL Service %s is headless (clusterIP: None): one database Pod needs no virtual IP, the name %s resolves straight to the Pod, and a StatefulSet needs such a governing Service for its stable Pod name %s-0.%s.", mysqlName(s), MySQLHost(s), mysqlName(s), mysqlName(s)),
	}
	if s.App.Config != nil {
		lines = append(lines, fmt.Sprintf("The app reads %s:3306 and its password from its config file: the rewritten %s (host %s, port 3306, the stack's database, user and password) is Secret %s, mounted read-only at %s; no ConfigMap holds it. A running Pod does not see a changed subPath file: after re-applying a changed config, run `kubectl rollout restart deployment/%s`.",
			MySQLHost(s), filepath.Base(s.App.Config.File), MySQLHost(s), configName(s), s.App.Config.MountPath, appName(s)))
	} else {
		l := fmt.Sprintf("The app has no config file: DB_HOST=%s, DB_PORT=3306, and its password in the file %s (DB_PASSWORD_FILE), mounted from Secret %s; the app must read that file", MySQLHost(s), appPasswordFile, secretName(s))
		if s.App.PasswordEnv {
			l += "; DB_PASSWORD also comes from the Secret (passwordEnv)"
		}
		lines = append(lines, l+".")
	}
	switch t {
	case corev1.ServiceTypeClusterIP:
		lines = append(lines, fmt.Sprintf("App Service %s is ClusterIP: reachable only inside the cluster (add an Ingress, or `kubectl port-forward svc/%s %d`); use --service-type NodePort or LoadBalancer to expose it directly.", appName(s), appName(s), s.App.Ports[0].Container))
	case corev1.ServiceTypeNodePort:
		lines = append(lines, fmt.Sprintf("App Service %s is NodePort: every node opens one port from 30000-32767 (see `kubectl get svc %s`), with a ClusterIP inside; fine for a lab or behind your own load balancer.", appName(s), appName(s)))
	case corev1.ServiceTypeLoadBalancer:
		lines = append(lines, fmt.Sprintf("App Service %s is LoadBalancer: the cloud (or MetalLB on bare metal) gives it an external IP; without a load-balancer controller it stays <pending> and works like a NodePort.", appName(s)))
	}
	lines = append(lines, fmt.Sprintf("Image %s must be pushed to a registry the cluster can pull from (or loaded onto its nodes) before the Deployment can start.", s.App.Image))
	if missing := NotExported(s); len(missing) > 0 {
		lines = append(lines, "warning: not in these manifests yet (compose-run honours them, export k8s does not): "+strings.Join(missing, ", ")+"; add them to the manifests by hand.")
	}
	return lines
}

// NotExported lists the stack settings that compose-run honours and the
// manifests do not carry yet, so that export never drops them silently.
func NotExported(s *stack.Stack) []string {
	var out []string
	if len(s.App.Command) > 0 {
		out = append(out, "app command (container args)")
	}
	if len(s.App.Secrets) > 0 {
		out = append(out, "app secrets (/run/secrets files)")
	}
	if s.App.Healthcheck != nil {
		out = append(out, "app healthcheck (the Deployment probes healthPath)")
	}
	if len(s.App.Aliases) > 0 || len(s.MySQL.Aliases) > 0 {
		out = append(out, fmt.Sprintf("network aliases %s (the Services are named %s and %s)", strings.Join(append(append([]string{}, s.App.Aliases...), s.MySQL.Aliases...), ", "), appName(s), mysqlName(s)))
	}
	if len(s.MySQL.InitScripts) > 0 {
		out = append(out, "MySQL init scripts (/docker-entrypoint-initdb.d)")
	}
	if s.App.Target != "" {
		out = append(out, "build target "+s.App.Target+" (build and push that stage)")
	}
	return out
}

// Marshal renders one manifest as YAML, without the server-side fields
// (status, creationTimestamp: null) the API types always carry.
func Marshal(m Manifest) ([]byte, error) {
	j, err := json.Marshal(m.Object)
	if err != nil {
		return nil, err
	}
	var generic map[string]any
	if err := json.Unmarshal(j, &generic); err != nil {
		return nil, err
	}
	prune(generic)
	return yaml.Marshal(generic)
}

func prune(v any) {
	if top, ok := v.(map[string]any); ok {
		delete(top, "status")
	}
	pruneNested(v)
}

// pruneNested drops null creationTimestamps and the empty structs Go
// marshals for unset strategies and metadata.
func pruneNested(v any) {
	switch x := v.(type) {
	case map[string]any:
		if ts, ok := x["creationTimestamp"]; ok && ts == nil {
			delete(x, "creationTimestamp")
		}
		for k, c := range x {
			pruneNested(c)
			if m, ok := c.(map[string]any); ok && len(m) == 0 {
				switch k {
				case "metadata", "strategy", "updateStrategy":
					delete(x, k)
				}
			}
		}
	case []any:
		for _, c := range x {
			pruneNested(c)
		}
	}
}

// WriteResult reports one written file.
type WriteResult struct {
	Manifest
	Path   string `json:"path"`
	Action string `json:"action"` // created, updated, unchanged or removed
}

// Write puts the manifests into dir. A file that exists with other content
// is overwritten only with force; without it nothing is written at all.
// Each file is written atomically; the Secret with mode 0600.
func Write(dir string, ms []Manifest, force bool) ([]WriteResult, error) {
	type job struct {
		m    Manifest
		path string
		data []byte
		act  string
	}
	jobs := make([]job, 0, len(ms))
	var clash []string
	for _, m := range ms {
		data, err := Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.File, err)
		}
		p := filepath.Join(dir, m.File)
		act := "created"
		if old, err := os.ReadFile(p); err == nil {
			if bytes.Equal(old, data) {
				act = "unchanged"
			} else {
				act = "updated"
				clash = append(clash, p)
			}
		} else if !os.IsNotExist(err) {
			return nil, err
		}
		jobs = append(jobs, job{m, p, data, act})
	}
	if len(clash) > 0 && !force {
		return nil, fmt.Errorf("would overwrite %s (changed since the last export); pass --force to replace, or choose another folder with -o", strings.Join(clash, ", "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := make([]WriteResult, 0, len(jobs))
	for _, j := range jobs {
		mode := os.FileMode(0o644)
		if j.m.Sensitive {
			mode = 0o600
		}
		if j.act != "unchanged" {
			if err := stack.WriteFileAtomic(j.path, j.data, mode); err != nil {
				return out, err
			}
		}
		out = append(out, WriteResult{Manifest: j.m, Path: j.path, Action: j.act})
	}
	return append(out, removeObsolete(dir, ms)...), nil
}

// removeObsolete removes the files of obsoleteFiles that an earlier export
// of the same stack wrote (its labels say so), so that `kubectl apply -f DIR`
// does not bring them back; a file without those labels is left alone.
func removeObsolete(dir string, ms []Manifest) []WriteResult {
	stackName := ""
	for _, m := range ms {
		if o, ok := m.Object.(metav1.Object); ok {
			stackName = o.GetLabels()["app.kubernetes.io/name"]
			break
		}
	}
	var out []WriteResult
	for _, f := range obsoleteFiles {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var obj struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if yaml.Unmarshal(b, &obj) != nil || stackName == "" ||
			obj.Metadata.Labels["app.kubernetes.io/managed-by"] != "docker-k8sprep" || obj.Metadata.Labels["app.kubernetes.io/name"] != stackName {
			continue
		}
		if os.Remove(p) == nil {
			out = append(out, WriteResult{Manifest: Manifest{File: f, Kind: obj.Kind, Name: obj.Metadata.Name}, Path: p, Action: "removed"})
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
