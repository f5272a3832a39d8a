// Package deploy tests the Kubernetes and OpenShift manifests: every document is decoded
// strictly into the official API types, so an unknown field, a wrong type or a misspelt
// key fails, and the settings docs/kubernetes.md promises are checked on the result.
// e2e/containers runs them with `podman kube play`.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// newObject gives the API type for each apiVersion and kind the manifests may hold.
var newObject = map[string]func() any{
	"apps/v1 Deployment": func() any { return &appsv1.Deployment{} },
	"v1 Service":         func() any { return &corev1.Service{} },
	"v1 ConfigMap":       func() any { return &corev1.ConfigMap{} },
}

// kustomization holds the fields of a Kustomization file the manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// variant is one folder of manifests, applied on its own.
type variant struct {
	Dir        string
	FixedUser  bool   // the pod sets runAsUser (plain Kubernetes); OpenShift's SCC picks it instead
	Sidecar    string // name of the mitmproxy sidecar container, if any
	TrustedCA  bool   // mounts a ConfigMap OpenShift fills with the cluster's trusted CAs
	ProxyFixed bool   // sets KAI_PROXY_*; without them the inherited proxy variables are adopted
}

var variants = []variant{
	{Dir: "kubernetes", FixedUser: true},
	{Dir: "openshift", TrustedCA: true},
	{Dir: "mitmproxy", FixedUser: true, Sidecar: "mitmproxy", ProxyFixed: true},
}

const (
	kaiContainer = "kai-solution-server" // the operator's container name
	kaiImage     = "localhost/kai-entrypoint:latest"
	bakedCerts   = "/etc/kai/certs" // the Dockerfile copies certs/ here
	bundleDir    = "/tmp"           // KAI_CA_BUNDLE defaults to /tmp/kai-entrypoint/ca-bundle.pem
	injectLabel  = "config.openshift.io/inject-trusted-cabundle"
)

// TestVariantsCoverDeploy keeps the table above and the folders of
// manifests (those with a Kustomization) in step.
func TestVariantsCoverDeploy(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs, want []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(e.Name(), "Kustomization")); e.IsDir() && err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	for _, v := range variants {
		want = append(want, v.Dir)
	}
	sort.Strings(want)
	if !slices.Equal(dirs, want) {
		t.Errorf("folders under deploy/: %v, the test knows %v", dirs, want)
	}
}

func TestManifests(t *testing.T) {
	for _, v := range variants {
		t.Run(v.Dir, func(t *testing.T) {
			objs := decodeDir(t, v.Dir)
			var deps []*appsv1.Deployment
			var svcs []*corev1.Service
			configMaps := map[string]*corev1.ConfigMap{}
			for _, o := range objs {
				switch o := o.(type) {
				case *appsv1.Deployment:
					deps = append(deps, o)
				case *corev1.Service:
					svcs = append(svcs, o)
				case *corev1.ConfigMap:
					configMaps[o.Name] = o
				}
			}
			if len(deps) != 1 || len(svcs) != 1 {
				t.Fatalf("want one Deployment and one Service, got %d and %d", len(deps), len(svcs))
			}
			checkDeployment(t, v, deps[0], configMaps)
			checkService(t, svcs[0], deps[0])
		})
	}
}

// decodeDir decodes every document of every .yaml file in dir strictly, and checks that
// the folder's Kustomization lists exactly those files.
func decodeDir(t *testing.T, dir string) []any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no .yaml files (%v)", dir, err)
	}
	var objs []any
	for _, f := range files {
		docs, err := splitYAML(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, doc := range docs {
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			mk, ok := newObject[meta.APIVersion+" "+meta.Kind]
			if !ok {
				t.Errorf("%s document %d: apiVersion %q kind %q is not one the manifests may use", f, i+1, meta.APIVersion, meta.Kind)
				continue
			}
			obj := mk()
			if err := strictDecode(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i+1, meta.Kind, err)
				continue
			}
			objs = append(objs, obj)
		}
	}

	kfile := filepath.Join(dir, "Kustomization")
	data, err := os.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := strictDecode(data, &k); err != nil {
		t.Fatalf("%s: %v", kfile, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	res := slices.Clone(k.Resources)
	sort.Strings(res)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || !slices.Equal(res, names) {
		t.Errorf("%s: %s %s with resources %v; want a Kustomization listing %v", kfile, k.APIVersion, k.Kind, k.Resources, names)
	}
	return objs
}

// strictDecode decodes one YAML document into obj, failing on an unknown field, a wrong
// type or a duplicate key. yaml.UnmarshalStrict matches field names as encoding/json
// does, ignoring case, so `readOnlyRootFileSystem` would pass there while the API
// server drops it as unknown: the JSON form is decoded again case-sensitively, as the
// API server decodes it.
func strictDecode(doc []byte, obj any) error {
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// splitYAML returns the non-empty documents of a multi-document YAML file.
func splitYAML(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil { // only comments
			docs = append(docs, doc)
		}
	}
}

func checkDeployment(t *testing.T, v variant, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if d.Name != "kai-api" {
		t.Errorf("Deployment %q, want kai-api (the operator's name)", d.Name)
	}

	// The restricted profile: pod level.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext: want runAsNonRoot: true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext: want seccompProfile RuntimeDefault")
	}
	if psc != nil {
		fixed := psc.RunAsUser != nil
		if fixed != v.FixedUser || (fixed && *psc.RunAsUser == 0) {
			t.Errorf("pod securityContext runAsUser %v: fixed non-zero UID wanted: %v", deref(psc.RunAsUser), v.FixedUser)
		}
		if !v.FixedUser && (psc.RunAsGroup != nil || psc.FSGroup != nil) {
			t.Errorf("pod securityContext: runAsGroup/fsGroup set; restricted-v2 assigns them")
		}
		if v.FixedUser && (psc.RunAsGroup == nil || *psc.RunAsGroup != 0) {
			t.Errorf("pod securityContext runAsGroup %v, want 0 (the image's writable folders are group 0)", deref(psc.RunAsGroup))
		}
	}

	volumes := map[string]corev1.Volume{}
	for _, vol := range pod.Volumes {
		volumes[vol.Name] = vol
	}
	var names []string
	var kai *corev1.Container
	for i := range pod.Containers {
		c := &pod.Containers[i]
		names = append(names, c.Name)
		if c.Name == kaiContainer {
			kai = c
		}
		// The restricted profile: every container.
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Privileged != nil ||
			sc.RunAsNonRoot != nil || sc.RunAsUser != nil || sc.RunAsGroup != nil {
			t.Errorf("container %s: securityContext must be exactly allowPrivilegeEscalation: false, capabilities drop [ALL], readOnlyRootFilesystem: true (the user comes from the pod)", c.Name)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("container %s: mount %s names no volume", c.Name, m.Name)
			}
		}
		// No secret as a plain value, in any container.
		for _, e := range c.Env {
			if e.Value != "" && looksSecret(e.Name) {
				t.Errorf("container %s: %s has a plain value; take it from a Secret", c.Name, e.Name)
			}
		}
	}
	wantNames := []string{kaiContainer}
	if v.Sidecar != "" {
		wantNames = append(wantNames, v.Sidecar)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("containers %v, want %v", names, wantNames)
	}

	if kai.Image != kaiImage || len(kai.Command) > 0 || len(kai.Args) > 0 {
		t.Errorf("%s: image %q command %v args %v; want %s with the image's ENTRYPOINT and CMD", kai.Name, kai.Image, kai.Command, kai.Args, kaiImage)
	}
	if len(kai.Ports) != 1 || kai.Ports[0].ContainerPort != 8000 {
		t.Errorf("%s: ports %v, want container port 8000", kai.Name, kai.Ports)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range kai.Env {
		env[e.Name] = e
	}
	if env["MOUNT_PATH"].Value != "/api" || env["KAI_LLM_PARAMS"].Value == "" {
		t.Errorf("%s: want MOUNT_PATH=/api and KAI_LLM_PARAMS, got %v and %v", kai.Name, env["MOUNT_PATH"], env["KAI_LLM_PARAMS"])
	}

	// mountOf finds the mount holding p, and its volume.
	mountOf := func(p string) (corev1.VolumeMount, corev1.Volume, bool) {
		for _, m := range kai.VolumeMounts {
			if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
				return m, volumes[m.Name], true
			}
		}
		return corev1.VolumeMount{}, corev1.Volume{}, false
	}
	if m, vol, ok := mountOf(bundleDir); !ok || m.MountPath != bundleDir || vol.EmptyDir == nil || m.ReadOnly {
		t.Errorf("%s: want a writable emptyDir at %s for the bundle", kai.Name, bundleDir)
	}

	// Secrets: from files in a Secret volume.
	for _, name := range []string{"KAI_DB_DSN", "OPENAI_API_KEY"} {
		if _, ok := env[name]; ok {
			t.Errorf("%s: %s is set directly; use KAI_SECRET_%s and a Secret volume", kai.Name, name, name)
		}
		file := env["KAI_SECRET_"+name].Value
		if _, vol, ok := mountOf(file); !ok || vol.Secret == nil || path.Dir(file) == "." {
			t.Errorf("%s: KAI_SECRET_%s=%q is not a file in a mounted Secret", kai.Name, name, file)
		}
	}

	// KAI_CERT_DIRS: every entry is baked into the image or mounted.
	var trustedCA bool
	for _, entry := range strings.Split(env["KAI_CERT_DIRS"].Value, ",") {
		if entry == bakedCerts {
			continue
		}
		_, vol, ok := mountOf(entry)
		switch {
		case !ok:
			t.Errorf("%s: KAI_CERT_DIRS entry %q is not mounted", kai.Name, entry)
		case vol.ConfigMap != nil:
			cm := configMaps[vol.ConfigMap.Name]
			trustedCA = trustedCA || (cm != nil && cm.Labels[injectLabel] == "true")
		}
	}
	// Every ConfigMap of CAs is read: mounted at or below a KAI_CERT_DIRS entry.
	for _, m := range kai.VolumeMounts {
		if volumes[m.Name].ConfigMap == nil {
			continue
		}
		listed := false
		for _, entry := range strings.Split(env["KAI_CERT_DIRS"].Value, ",") {
			listed = listed || m.MountPath == entry || strings.HasPrefix(m.MountPath, entry+"/")
		}
		if !listed {
			t.Errorf("%s: ConfigMap mount %s is not in KAI_CERT_DIRS %q", kai.Name, m.MountPath, env["KAI_CERT_DIRS"].Value)
		}
	}
	if trustedCA != v.TrustedCA {
		t.Errorf("%s: KAI_CERT_DIRS lists OpenShift's injected trusted-CA ConfigMap: %v, want %v", kai.Name, trustedCA, v.TrustedCA)
	}
	_, proxy := env["KAI_PROXY_HTTPS"]
	if proxy != v.ProxyFixed {
		t.Errorf("%s: KAI_PROXY_HTTPS set: %v, want %v", kai.Name, proxy, v.ProxyFixed)
	}
	if _, wait := env["KAI_WAIT"]; wait != (v.Sidecar != "") {
		t.Errorf("%s: KAI_WAIT set: %v; want it only with a sidecar", kai.Name, wait)
	}
}

// looksSecret reports whether a variable name suggests a credential (a KAI_SECRET_*
// value is a file name, not a secret).
func looksSecret(name string) bool {
	if strings.HasPrefix(name, "KAI_SECRET_") {
		return false
	}
	for _, s := range []string{"KEY", "TOKEN", "PASSWORD", "SECRET", "DSN", "CREDENTIAL"} {
		if strings.Contains(strings.ToUpper(name), s) {
			return true
		}
	}
	return false
}

func checkService(t *testing.T, s *corev1.Service, d *appsv1.Deployment) {
	t.Helper()
	if s.Name != "kai-solution-server" || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8000 {
		t.Errorf("Service %s ports %v: want kai-solution-server on 8000 (the operator's)", s.Name, s.Spec.Ports)
	}
	labels := d.Spec.Template.Labels
	for k, v := range s.Spec.Selector {
		if labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, labels)
		}
	}
	if len(s.Spec.Selector) == 0 {
		t.Errorf("Service has no selector")
	}
	target := s.Spec.Ports[0].TargetPort.String()
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == target || p.ContainerPort == s.Spec.Ports[0].TargetPort.IntVal {
				return
			}
		}
	}
	t.Errorf("Service targetPort %s names no container port", target)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
