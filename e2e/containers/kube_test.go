package containers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// The manifests in deploy/ as `podman kube play` (Podman 4.3) runs them. Each test copy
// is the manifest's Deployment with these substitutions only:
//   - Secret volumes become hostPath folders holding the keys as files (podman 4.3
//     panics on Secret volumes);
//   - ConfigMap volumes become hostPath folders laid out as the kubelet lays out a
//     ConfigMap (a timestamped folder, ..data linking to it, each key linking into
//     ..data), which podman 4.3 does not reproduce;
//   - the images are the local stand-ins (mitmproxy) or the one built from this
//     repository, tagged as the manifests name it;
//   - what the cluster would add is added: the UID OpenShift's restricted-v2 SCC picks,
//     the proxy variables OLM injects, KUBERNETES_SERVICE_HOST, and, as test fixtures,
//     an HTTPS upstream, a cluster proxy and host names for both (hostAliases).
// Podman's emptyDir is a named volume that outlives the pod and is shared by pods that
// use the same name, so the pods run one after the other and `kube play --down`
// removes them with their volumes.

const (
	kubeImage = "localhost/kai-entrypoint:latest" // the image deploy/ names
	kubePod   = "kai-api-pod-0"                   // podman's name for the Deployment's pod
	kubeKai   = kubePod + "-kai-solution-server"  // and for its Kai container
	// sccUser is a UID from an OpenShift namespace's range, as restricted-v2 assigns it.
	sccUser = 1000770000
)

// kubeSuite runs deploy/kubernetes, deploy/openshift (as OLM and restricted-v2 would)
// and deploy/mitmproxy with `podman kube play`; image is the one containerSuite built
// from this repository.
func kubeSuite(t *testing.T, e *engine, root, image string) {
	e.must(t, "tag", image, kubeImage)
	t.Run("kubernetes", func(t *testing.T) { kubePlain(t, e, root) })
	t.Run("openshift", func(t *testing.T) { kubeOpenShift(t, e, root) })
	t.Run("mitmproxy", func(t *testing.T) { kubeSidecar(t, e, root) })
}

// kubePlain runs deploy/kubernetes as it is, with a CA in the extra-CA ConfigMap.
func kubePlain(t *testing.T, e *engine, root string) {
	dir := t.TempDir()
	extraCA, err := testpki.NewCA("Throwaway kai-entrypoint kube-test extra CA")
	if err != nil {
		t.Fatal(err)
	}
	secrets := kubeSecrets(t, dir)
	dep := kubeDeployment(t, root, "kubernetes")
	substitute(t, &dep.Spec.Template.Spec, map[string]string{
		"extra-ca":     configMapDir(t, filepath.Join(dir, "extra-ca"), map[string][]byte{"ca.crt": extraCA.PEM}),
		"kai-api-keys": secrets["kai-api-keys"],
		"kai-db":       secrets["kai-db"],
	})
	playKube(t, e, dep)

	status := e.must(t, "exec", kubeKai, "cat", "/proc/1/status").Stdout
	if uid, gid := statusField(status, "Uid"), statusField(status, "Gid"); uid != "1001" || gid != "0" {
		t.Errorf("the server runs as uid %s gid %s, want the manifest's 1001 and 0", uid, gid)
	}
	checkReadOnlyRoot(t, e, kubeKai)
	env := procEnv(t, e, kubeKai)
	for name, want := range map[string]string{"SSL_CERT_FILE": bundlePath, "OPENAI_API_KEY": kubeAPIKey, "KAI_DB_DSN": kubeDSN} {
		if env[name] != want {
			t.Errorf("the server's %s=%q, want %q", name, env[name], want)
		}
	}
	checkBundle(t, e, extraCA.PEM)
	stopKube(t, e)
}

// kubeOpenShift runs deploy/openshift with the cluster proxy reaching the pod as OLM
// passes it on (upper-case names only), the proxy's CA in the injected trusted-CA
// bundle, and the UID restricted-v2 picks.
func kubeOpenShift(t *testing.T, e *engine, root string) {
	dir := t.TempDir()
	pki := newUpstreamPKI(t, filepath.Join(dir, "upstream"), filepath.Join(dir, "upstream-ca"), "upstream")
	proxyCA, err := testpki.NewCA("Throwaway kai-entrypoint kube-test cluster proxy CA")
	if err != nil {
		t.Fatal(err)
	}
	// mitmproxy takes its CA (key and certificate in one file) from its confdir, where it
	// writes more files as the pod's user.
	confdir := hostDir(t, filepath.Join(dir, "proxy"), 0o777, map[string][]byte{"mitmproxy-ca.pem": append(proxyCA.KeyPEM(), proxyCA.PEM...)})
	// OpenShift's injected bundle: the system roots plus the cluster's CAs.
	roots, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("system roots for the injected trusted-CA bundle: %v", err)
	}
	secrets := kubeSecrets(t, dir)

	dep := kubeDeployment(t, root, "openshift")
	pod := &dep.Spec.Template.Spec
	substitute(t, pod, map[string]string{
		"kai-trusted-ca": configMapDir(t, filepath.Join(dir, "trusted-ca"), map[string][]byte{"ca-bundle.crt": append(roots, proxyCA.PEM...)}),
		"kai-api-keys":   secrets["kai-api-keys"],
		"kai-db":         secrets["kai-db"],
	})
	pod.SecurityContext.RunAsUser = ptr(int64(sccUser)) // restricted-v2's pick; no group: the runtime gives GID 0
	const proxy = "http://proxy:8080"
	const serviceHost = "172.30.0.1"
	kai := container(t, pod, "kai-solution-server")
	kai.Env = append(kai.Env,
		// As OLM injects the cluster proxy: upper-case names only.
		corev1.EnvVar{Name: "HTTP_PROXY", Value: proxy},
		corev1.EnvVar{Name: "HTTPS_PROXY", Value: proxy},
		corev1.EnvVar{Name: "NO_PROXY", Value: ".corp.example,169.254.169.254"},
		// As the kubelet sets them in every container.
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: serviceHost},
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: "443"})
	pod.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"proxy", "upstream"}}}
	addUpstream(pod, pki, e.Images["KAI_IMAGE"])
	pod.Containers = append(pod.Containers, corev1.Container{
		Name: "proxy", Image: e.Images["MITMPROXY_IMAGE"],
		Command: []string{"mitmdump", "--listen-port", "8080", "--set", "confdir=/confdir",
			"--set", "ssl_verify_upstream_trusted_ca=/upstream-ca/ca.pem", "--modify-headers", "/~q/X-Via-Mitm/1"},
		Env:          []corev1.EnvVar{{Name: "PYTHONUNBUFFERED", Value: "1"}},
		VolumeMounts: []corev1.VolumeMount{{Name: "proxy-confdir", MountPath: "/confdir"}, {Name: "upstream-ca", MountPath: "/upstream-ca", ReadOnly: true}},
	})
	pod.Volumes = append(pod.Volumes, hostPathVolume("proxy-confdir", confdir))

	playKube(t, e, dep)
	waitKube(t, e, "proxy", 8080)

	// An arbitrary UID with GID 0, on a read-only root.
	status := e.must(t, "exec", kubeKai, "cat", "/proc/1/status").Stdout
	if uid, gid := statusField(status, "Uid"), statusField(status, "Gid"); uid != fmt.Sprint(sccUser) || gid != "0" {
		t.Errorf("the server runs as uid %s gid %s, want %d and 0", uid, gid, sccUser)
	}
	checkReadOnlyRoot(t, e, kubeKai)
	// The secrets reach the server only: `exec` gets the container's own environment.
	if raw := e.must(t, "exec", kubeKai, "env").Stdout; strings.Contains(raw, kubeAPIKey) || strings.Contains(raw, kubeDSN) {
		t.Errorf("a secret value is in the container's environment:\n%s", raw)
	}

	// The server (PID 1) sees the derived variables: the adopted proxy in both
	// spellings, and a no-proxy list with loopback and the cluster's suffixes.
	env := procEnv(t, e, kubeKai)
	noProxy := ".corp.example,169.254.169.254,localhost,127.0.0.1,::1,.svc,.cluster.local," + serviceHost
	for name, want := range map[string]string{
		"HTTP_PROXY": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "https_proxy": proxy,
		"NO_PROXY": noProxy, "no_proxy": noProxy, "no_grpc_proxy": noProxy,
		"SSL_CERT_FILE": bundlePath, "REQUESTS_CA_BUNDLE": bundlePath,
		"OPENAI_API_KEY": kubeAPIKey, "KAI_DB_DSN": kubeDSN,
	} {
		if env[name] != want {
			t.Errorf("the server's %s=%q, want %q", name, env[name], want)
		}
	}
	checkBundle(t, e, proxyCA.PEM)
	// docs/kubernetes.md: `kubectl exec ... kai-entrypoint --check` shows the derived settings.
	if out := e.must(t, "exec", kubeKai, "kai-entrypoint", "--check").Stdout; !strings.Contains(out, "(from inherited HTTPS_PROXY)") ||
		!strings.Contains(out, bundlePath) || strings.Contains(out, kubeAPIKey) {
		t.Errorf("kai-entrypoint --check in the pod: want the adopted proxy and the bundle, and no secret:\n%s", out)
	}

	// Every client reaches the HTTPS upstream through the cluster proxy and verifies the
	// proxy's certificate with the bundle.
	checkAllThroughSidecar(t, "openshift pod", probe(t, e, "https://upstream:8443/v1/models"))
	// curl reads only the lower-case http_proxy for http:// URLs: the request reaches the
	// server's own port by a name that is not in the no-proxy list, through the proxy.
	rep := probe(t, e, "http://upstream:8000/health", "curl")
	if !rep.OK || !strings.Contains(e.logs(t, kubePod+"-proxy"), "http://upstream:8000/health") {
		t.Errorf("curl to http://upstream:8000/health did not go through the proxy (ok=%v); proxy log:\n%s",
			rep.OK, tail(e.logs(t, kubePod+"-proxy"), 3000))
	}

	stopKube(t, e)
}

// kubeSidecar runs deploy/mitmproxy: Kai waits for the sidecar, trusts its CA through the
// shared emptyDir, and every client goes through it.
func kubeSidecar(t *testing.T, e *engine, root string) {
	dir := t.TempDir()
	pki := newUpstreamPKI(t, filepath.Join(dir, "upstream"), filepath.Join(dir, "upstream-ca"), "upstream")
	extraCA, err := testpki.NewCA("Throwaway kai-entrypoint kube-test extra CA")
	if err != nil {
		t.Fatal(err)
	}
	secrets := kubeSecrets(t, dir)

	dep := kubeDeployment(t, root, "mitmproxy")
	pod := &dep.Spec.Template.Spec
	substitute(t, pod, map[string]string{
		"extra-ca":     configMapDir(t, filepath.Join(dir, "extra-ca"), map[string][]byte{"ca.crt": extraCA.PEM}),
		"kai-api-keys": secrets["kai-api-keys"],
		"kai-db":       secrets["kai-db"],
	})
	pod.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"upstream"}}}
	addUpstream(pod, pki, e.Images["KAI_IMAGE"])
	sidecar := container(t, pod, "mitmproxy")
	sidecar.Image = e.Images["MITMPROXY_IMAGE"]
	// As the compose test's override: trust the upstream's CA, stamp every request.
	sidecar.Command = append(sidecar.Command, "--set", "ssl_verify_upstream_trusted_ca=/upstream-ca/ca.pem", "--modify-headers", "/~q/X-Via-Mitm/1")
	sidecar.VolumeMounts = append(sidecar.VolumeMounts, corev1.VolumeMount{Name: "upstream-ca", MountPath: "/upstream-ca", ReadOnly: true})

	playKube(t, e, dep)
	checkReadOnlyRoot(t, e, kubeKai)
	checkReadOnlyRoot(t, e, kubePod+"-mitmproxy")

	env := procEnv(t, e, kubeKai)
	if env["HTTPS_PROXY"] != "http://127.0.0.1:8080" || env["https_proxy"] != env["HTTPS_PROXY"] || env["SSL_CERT_FILE"] != bundlePath {
		t.Errorf("the server's environment lacks the derived variables: %v", env)
	}
	sidecarCA := e.must(t, "exec", kubePod+"-mitmproxy", "cat", "/mitmproxy/mitmproxy-ca-cert.pem").Stdout
	checkBundle(t, e, []byte(sidecarCA), extraCA.PEM)
	if logs := e.logs(t, kubeKai); !strings.Contains(logs, "waiting") || !strings.Contains(logs, "ready after") {
		t.Errorf("the shim's log shows no wait for the sidecar:\n%s", tail(logs, 3000))
	}
	checkAllThroughSidecar(t, "mitmproxy pod", probe(t, e, "https://upstream:8443/v1/models"))
	stopKube(t, e)
}

// Values of the test's Secrets, as files.
const (
	kubeAPIKey = "sk-kube-test-not-a-key"
	kubeDSN    = "postgresql+asyncpg://kai:not-a-password@db.kai.svc:5432/kai"
)

// kubeSecrets writes the two Secrets the manifests mount, one folder each.
func kubeSecrets(t *testing.T, dir string) map[string]string {
	t.Helper()
	return map[string]string{
		"kai-api-keys": hostDir(t, filepath.Join(dir, "kai-api-keys"), 0o755, map[string][]byte{"OPENAI_API_KEY": []byte(kubeAPIKey)}),
		"kai-db":       hostDir(t, filepath.Join(dir, "kai-db"), 0o755, map[string][]byte{"KAI_DB_DSN": []byte(kubeDSN)}),
	}
}

// hostDir makes a folder with the given mode holding the files (0644).
func hostDir(t *testing.T, dir string, mode os.FileMode, files map[string][]byte) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // MkdirAll's mode is cut by the umask
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// configMapDir lays the files out as the kubelet mounts a ConfigMap: the data in a
// timestamped folder, ..data linking to it, and each key a link into ..data.
func configMapDir(t *testing.T, dir string, files map[string][]byte) string {
	t.Helper()
	const stamp = "..2026_12_03_10_00_00.1234567890"
	hostDir(t, dir, 0o755, nil)
	hostDir(t, filepath.Join(dir, stamp), 0o755, files)
	if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// kubeDeployment reads the Deployment of deploy/<variant>/kai-api.yaml.
func kubeDeployment(t *testing.T, root, variant string) *appsv1.Deployment {
	t.Helper()
	file := filepath.Join(root, "deploy", variant, "kai-api.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: no Deployment", file)
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var dep appsv1.Deployment
		if err := yaml.Unmarshal(doc, &dep); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if dep.Kind == "Deployment" {
			return &dep
		}
	}
}

// substitute replaces every Secret and ConfigMap volume by a hostPath folder, given by
// volume name.
func substitute(t *testing.T, pod *corev1.PodSpec, dirs map[string]string) {
	t.Helper()
	for i, v := range pod.Volumes {
		if v.Secret == nil && v.ConfigMap == nil {
			continue
		}
		dir, ok := dirs[v.Name]
		if !ok {
			t.Fatalf("no hostPath substitute for volume %s", v.Name)
		}
		pod.Volumes[i] = hostPathVolume(v.Name, dir)
	}
}

func hostPathVolume(name, dir string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: ptr(corev1.HostPathDirectory)}}}
}

// addUpstream adds the HTTPS upstream (upstream.py in the Kai stand-in image) and the
// upstream CA volume the proxy verifies it with.
func addUpstream(pod *corev1.PodSpec, pki upstreamPKI, kaiImage string) {
	pod.Containers = append(pod.Containers, corev1.Container{
		Name: "upstream", Image: kaiImage,
		Command:      []string{"python3", "/opt/upstream/upstream.py", "/upstream/upstream.pem", "/upstream/upstream.key", "8443"},
		VolumeMounts: []corev1.VolumeMount{{Name: "upstream", MountPath: "/upstream", ReadOnly: true}},
	})
	pod.Volumes = append(pod.Volumes, hostPathVolume("upstream", pki.ServerDir), hostPathVolume("upstream-ca", pki.CADir))
}

func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	t.Fatalf("the manifest has no container %s", name)
	return nil
}

func ptr[T any](v T) *T { return &v }

// playKube writes the test copy, plays it, waits for Kai's /health and removes the pod
// and its volumes when the test ends.
func playKube(t *testing.T, e *engine, dep *appsv1.Deployment) {
	t.Helper()
	data, err := yaml.Marshal(dep)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kai-api.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("test copy:\n%s", data)
			for _, c := range dep.Spec.Template.Spec.Containers {
				t.Logf("logs of %s:\n%s", c.Name, tail(e.logs(t, kubePod+"-"+c.Name), 6000))
			}
		}
		execute(t, e.cmd("kube", "play", "--down", file))
	})
	e.must(t, "kube", "play", file)
	waitKube(t, e, "kai-solution-server", 8000)
}

// waitKube waits until the container's port accepts connections inside the pod.
func waitKube(t *testing.T, e *engine, name string, port int) {
	t.Helper()
	err := waitFor(90*time.Second, func() error {
		return execute(t, e.cmd("exec", kubeKai, "curl", "-sS", "--noproxy", "*", "-o", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/", port))).Err
	})
	if err != nil {
		t.Fatalf("%s: port %d: %v\n%s", name, port, err, tail(e.logs(t, kubePod+"-"+name), 4000))
	}
}

// probe asks the Kai stand-in, whose environment the shim derived, to call u.
func probe(t *testing.T, e *engine, u string, clients ...string) standinReport {
	t.Helper()
	q := url.Values{"url": {u}, "client": clients}
	r := execute(t, e.cmd("exec", kubeKai, "curl", "-sS", "--noproxy", "*", "--max-time", "120",
		"http://127.0.0.1:8000/probe?"+q.Encode()))
	return parseReport(t, "/probe "+u, r.Stdout)
}

// procEnv is the environment of the container's PID 1, the server the shim exec'd.
func procEnv(t *testing.T, e *engine, name string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range strings.Split(e.must(t, "exec", name, "cat", "/proc/1/environ").Stdout, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// statusField is the first value of a /proc/PID/status line ("Uid:\t1000\t1000...").
func statusField(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == name+":" {
			return f[1]
		}
	}
	return ""
}

func checkReadOnlyRoot(t *testing.T, e *engine, name string) {
	t.Helper()
	r := execute(t, e.cmd("exec", name, "touch", "/kai-kube-test"))
	if r.Err == nil || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("%s: writing to / should fail with a read-only file system\n%s", name, r)
	}
}

// checkBundle asserts that the bundle in /tmp holds every given CA.
func checkBundle(t *testing.T, e *engine, cas ...[]byte) {
	t.Helper()
	bundle := e.must(t, "exec", kubeKai, "cat", bundlePath).Stdout
	for _, ca := range cas {
		if !strings.Contains(bundle, strings.TrimSpace(string(ca))) {
			t.Errorf("the bundle %s lacks the CA\n%s", bundlePath, ca)
		}
	}
}

// stopKube stops the pod as the kubelet deletes one (SIGTERM, then SIGKILL after the
// 30 s grace period) and checks that SIGTERM ended it: within a third of the grace
// period, so that a loaded machine is not mistaken for a server that ignores SIGTERM.
func stopKube(t *testing.T, e *engine) {
	t.Helper()
	r := e.must(t, "pod", "stop", "--time", "30", kubePod)
	if r.Elapsed >= 10*time.Second {
		t.Errorf("stopping the pod took %s, want well within the 30 s grace period (under 10 s)", r.Elapsed)
	}
	code := strings.TrimSpace(e.must(t, "inspect", "--format", "{{.State.ExitCode}}", kubeKai).Stdout)
	if code != "0" && code != "143" {
		t.Errorf("the Kai container exited %s after SIGTERM, want 0 or 143", code)
	}
}
