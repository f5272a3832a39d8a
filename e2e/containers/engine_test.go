package containers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/mounts"
)

// engine is a container engine (Docker or Podman) with its compose tools, all
// confined to state the test created and removes.
type engine struct {
	Name     string            // "docker" or "podman"
	Bin      string            // the engine's CLI
	Env      []string          // environment for the CLI and compose
	Composes []composeTool     // each runs the compose stack
	Init     string            // the init --init runs, as `top` names it
	Images   map[string]string // the local base images, by the variable naming them (importImages)
}

// composeTool is one compose implementation.
type composeTool struct {
	Name string   // names the subtest
	Args []string // the command line the compose arguments follow
	Env  []string // added to the engine's environment
	Sep  string   // joins project, service and index in container names
}

// cmd is a command line for the engine's CLI.
func (e *engine) cmd(args ...string) command {
	return command{Args: append([]string{e.Bin}, args...), Env: e.Env}
}

// must runs the engine's CLI and fails the test unless it exits 0.
func (e *engine) must(t *testing.T, args ...string) result {
	t.Helper()
	return must(t, e.cmd(args...))
}

// startDocker starts a private dockerd (own data root, exec root, socket, no iptables
// changes) and stops it, removing all its state, when the test ends.
func startDocker(t *testing.T) *engine {
	t.Helper()
	tools := requireTools(t, "dockerd", "docker-compose", "debootstrap", "tar", "go")
	cli := "/usr/bin/docker" // Debian's client matches its daemon (the PATH one may lack buildx)
	if _, err := os.Stat(cli); err != nil {
		cli = requireTools(t, "docker")["docker"]
	}
	plugins := composePlugin(t, cli)
	dir, err := os.MkdirTemp("", "kai-ct-docker-")
	if err != nil {
		t.Fatal(err)
	}
	_, noBridge := net.InterfaceByName("docker0") // non-nil: docker0 is this daemon's to remove
	sock := filepath.Join(dir, "docker.sock")
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command(tools["dockerd"], "--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+sock,
		// No iptables rules: nothing to undo afterwards. Containers on one bridge still
		// reach each other, and published ports go through docker-proxy.
		"--iptables=false")
	d.Stdout, d.Stderr = logf, logf
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("dockerd pid %d, state in %s", d.Process.Pid, dir)
	e := &engine{Name: "docker", Bin: cli, Init: "docker-init",
		Env: envWith("DOCKER_HOST=unix://"+sock, "DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0"),
		Composes: []composeTool{
			{Name: "docker-compose-v1", Args: []string{tools["docker-compose"]}, Sep: "_"},
			// The README's `docker compose`: the current Compose as the CLI's plugin.
			{Name: "docker-compose-" + composeVersion, Args: []string{cli, "compose"}, Env: []string{"DOCKER_CONFIG=" + plugins}, Sep: "-"},
		}}
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- d.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("dockerd did not stop within 30 s; killing it")
			syscall.Kill(-d.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("dockerd log:\n%s", tail(string(b), 6000))
			}
		}
		if noBridge != nil {
			execute(t, command{Args: []string{"ip", "link", "delete", "docker0"}})
		}
		if err := mounts.RemoveTree(dir); err != nil {
			t.Error(err)
		}
	})
	if err := waitFor(30*time.Second, func() error { return execute(t, e.cmd("version")).Err }); err != nil {
		t.Fatalf("dockerd did not come up: %v", err)
	}
	return e
}

// podmanConf is the containers.conf from container-runtime.md (runc, ulimits the VM
// allows) plus folders private to the test.
const podmanConf = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%[1]s/events.log"
tmp_dir = "%[1]s/tmp"

[network]
network_config_dir = "%[1]s/networks"
`

const podmanStorage = `[storage]
driver = "overlay"
graphroot = "%[1]s/storage"
runroot = "%[1]s/run"
`

// setupPodman points Podman at a private storage, network and state folder and removes
// them when the test ends.
func setupPodman(t *testing.T) *engine {
	t.Helper()
	tools := requireTools(t, "podman", "podman-compose", "runc", "debootstrap", "tar", "go")
	if _, err := exec.LookPath("catatonit"); err != nil {
		if _, err := os.Stat("/usr/libexec/podman/catatonit"); err != nil {
			unavailable(t, "missing catatonit (podman run --init needs it)")
		}
	}
	dir, err := os.MkdirTemp("", "kai-ct-podman-")
	if err != nil {
		t.Fatal(err)
	}
	netavarkBefore := netavarkChains(t)
	for _, f := range []struct{ name, text string }{{name: "containers.conf", text: podmanConf}, {name: "storage.conf", text: podmanStorage}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(fmt.Sprintf(f.text, dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &engine{Name: "podman", Bin: tools["podman"], Init: "catatonit",
		Composes: []composeTool{{Name: "podman-compose", Args: []string{tools["podman-compose"]}, Sep: "_"}},
		Env: envWith("CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
			"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"))}
	t.Cleanup(func() {
		// Guard: reset only the private storage, never the machine's.
		r := execute(t, e.cmd("info", "--format", "{{.Store.GraphRoot}}"))
		if strings.TrimSpace(r.Stdout) == filepath.Join(dir, "storage") {
			execute(t, e.cmd("system", "reset", "--force"))
		} else {
			t.Errorf("podman graph root is %q, not under %s: not resetting", strings.TrimSpace(r.Stdout), dir)
		}
		if err := mounts.RemoveTree(dir); err != nil {
			t.Error(err)
		}
		if len(netavarkBefore) == 0 {
			removeNetavarkChains(t)
		}
	})
	got := strings.TrimSpace(e.must(t, "info", "--format", "{{.Store.GraphRoot}} {{.Host.OCIRuntime.Name}}").Stdout)
	if want := filepath.Join(dir, "storage") + " runc"; got != want {
		t.Fatalf("podman info: got %q, want %q", got, want)
	}
	return e
}

// proc is one process of a container, as `top` shows it.
type proc struct{ PID, PPID, Args string }

// top lists the container's processes.
func (e *engine) top(t *testing.T, name string) []proc {
	t.Helper()
	var r result
	if e.Name == "podman" {
		r = e.must(t, "top", name, "pid", "ppid", "args")
	} else {
		r = e.must(t, "top", name, "-o", "pid,ppid,args")
	}
	var ps []proc
	for i, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue
		}
		ps = append(ps, proc{PID: f[0], PPID: f[1], Args: strings.Join(f[2:], " ")})
	}
	return ps
}

// logs returns the container's stdout and stderr.
func (e *engine) logs(t *testing.T, name string) string {
	t.Helper()
	r := execute(t, e.cmd("logs", name))
	return r.Stdout + r.Stderr
}

// netavarkChains lists the iptables chains netavark (Podman's network stack) made, as
// "table chain". Netavark removes its per-network rules but leaves these chains behind.
func netavarkChains(t *testing.T) []string {
	t.Helper()
	var chains []string
	for _, table := range []string{"nat", "filter"} {
		r := execute(t, command{Args: []string{"iptables", "-t", table, "-S"}})
		for _, line := range strings.Split(r.Stdout, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "NETAVARK") {
				chains = append(chains, table+" "+f[1])
			}
		}
	}
	return chains
}

// removeNetavarkChains deletes the jumps into netavark's chains and the chains, when
// there were none before the test (so none belong to another Podman user).
func removeNetavarkChains(t *testing.T) {
	t.Helper()
	for _, table := range []string{"nat", "filter"} {
		r := execute(t, command{Args: []string{"iptables", "-t", table, "-S"}})
		var chains []string
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := splitRule(line)
			switch {
			case len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "NETAVARK"):
				chains = append(chains, f[1])
			case len(f) > 2 && f[0] == "-A" && !strings.HasPrefix(f[1], "NETAVARK") && strings.Contains(line, "-j NETAVARK"):
				execute(t, command{Args: append([]string{"iptables", "-t", table, "-D"}, f[1:]...)})
			}
		}
		for _, c := range chains {
			execute(t, command{Args: []string{"iptables", "-t", table, "-F", c}})
		}
		for _, c := range chains {
			execute(t, command{Args: []string{"iptables", "-t", table, "-X", c}})
		}
	}
	if left := netavarkChains(t); len(left) > 0 {
		t.Logf("netavark chains left: %v", left)
	}
}

// splitRule splits one line of `iptables -S` into arguments, honouring double quotes.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, inArg := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, inArg = !inQuote, true
		case r == ' ' && !inQuote:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
