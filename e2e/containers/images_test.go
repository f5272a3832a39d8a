package containers

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheDir keeps the debootstrap root file system and a Go module cache between runs.
// Everything in it is rebuilt when missing, so deleting it is always safe.
const cacheDir = "/var/cache/kai-entrypoint-test"

// The stand-in base images share one Debian root file system: python3 with the HTTP
// clients Kai uses (for the Kai stand-in), mitmproxy (for the sidecar) and curl.
var (
	debianSuite    = "bookworm"
	debianMirror   = "http://deb.debian.org/debian"
	rootfsPackages = []string{"ca-certificates", "curl", "python3", "python3-requests",
		"python3-httpx", "python3-aiohttp", "mitmproxy",
		// debootstrap does not resolve virtual packages: python3-cryptography needs
		// python3-cffi-backend-api-min, which only this package provides.
		"python3-cffi-backend"}
)

// Names of the local stand-ins for the Dockerfile's and docker-compose.yml's public
// base images. localhost/ makes a missing image fail at once instead of trying a registry.
const (
	goImage   = "localhost/kai-test/golang:1.26"
	kaiImage  = "localhost/kai-test/kai-solution-server:latest"
	mitmImage = "localhost/kai-test/mitmproxy:latest"
)

const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var (
	rootfsOnce sync.Once
	rootfsFile string
	rootfsErr  error
)

// rootfsTar returns a tar of the Debian root file system, from the cache or made now
// with debootstrap (about 80 s).
func rootfsTar(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() { rootfsFile, rootfsErr = makeRootfsTar(t) })
	if rootfsErr != nil {
		t.Fatalf("debootstrap root file system: %v", rootfsErr)
	}
	return rootfsFile
}

func makeRootfsTar(t *testing.T) (string, error) {
	sum := sha256.Sum256([]byte(strings.Join(append([]string{debianSuite, debianMirror, "minbase"}, rootfsPackages...), "\n")))
	name := fmt.Sprintf("rootfs-%s-%s.tar", debianSuite, hex.EncodeToString(sum[:6]))
	dir := cacheDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("cache %s unusable (%v); the root file system is made for this run only", dir, err)
		dir = runTempDir(t)
	}
	file := filepath.Join(dir, name)
	if err := checkTar(file); err == nil {
		t.Logf("using cached root file system %s", file)
		return file, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Logf("ignoring cached %s: %v", file, err)
	}
	work, err := os.MkdirTemp(dir, "debootstrap-")
	if err != nil {
		return "", err
	}
	defer removeTree(t, work)
	root := filepath.Join(work, "rootfs")
	r := execute(t, command{Timeout: 10 * time.Minute, Args: []string{"debootstrap", "--variant=minbase",
		"--include=" + strings.Join(rootfsPackages, ","), debianSuite, root, debianMirror}})
	if r.Err != nil {
		log, _ := os.ReadFile(filepath.Join(root, "debootstrap", "debootstrap.log"))
		return "", fmt.Errorf("%v\n%s\n--- debootstrap.log\n%s", r.Err, r, tail(string(log), 6000))
	}
	part := filepath.Join(work, name)
	r = execute(t, command{Timeout: 5 * time.Minute, Args: []string{"tar", "--numeric-owner", "--xattrs",
		"-C", root, "-cf", part, "--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*", "."}})
	if r.Err != nil {
		return "", fmt.Errorf("%v\n%s", r.Err, r)
	}
	if err := os.Rename(part, file); err != nil {
		return "", err
	}
	return file, nil
}

// checkTar confirms file is a readable tar holding a Debian root file system.
func checkTar(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return errors.New("no usr/bin/python3 in the archive")
		}
		if err != nil {
			return err
		}
		if strings.TrimPrefix(h.Name, "./") == "usr/bin/mitmdump" {
			return nil
		}
	}
}

// removeTree deletes dir after unmounting anything still mounted below it (a failed
// debootstrap or daemon can leave /proc or overlay mounts behind).
func removeTree(t *testing.T, dir string) {
	t.Helper()
	for _, m := range mountsBelow(dir) {
		if r := execute(t, command{Args: []string{"umount", "-l", m}}); r.Err != nil {
			t.Logf("umount %s: %v", m, r.Err)
		}
	}
	if left := mountsBelow(dir); len(left) > 0 {
		t.Errorf("not removing %s: still mounted: %v", dir, left)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing %s: %v", dir, err)
	}
}

// mountsBelow lists mount points at or below dir, deepest first.
func mountsBelow(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append([]string{mp}, out...)
		}
	}
	return out
}

var (
	runTempOnce sync.Once
	runTemp     string
)

// runTempDir is a folder for this test process, removed by TestMain.
func runTempDir(t *testing.T) string {
	runTempOnce.Do(func() {
		var err error
		if runTemp, err = os.MkdirTemp("", "kai-entrypoint-containers-"); err != nil {
			t.Fatal(err)
		}
	})
	return runTemp
}

// goModCache fills a module cache with what go.mod needs, with the host's Go and
// GOPROXY, so that the builder stage's `go mod download` works without a network.
func goModCache(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(cacheDir, "gomodcache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		dir = filepath.Join(runTempDir(t), "gomodcache")
	}
	must(t, command{Dir: repoRoot(t), Timeout: 5 * time.Minute, Args: []string{"go", "mod", "download"},
		Env: envWith("GOMODCACHE="+dir, "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local")})
	return dir
}

// layer is something added to the root file system for one image.
type layer struct {
	Name    string      // path in the image, without a leading slash
	Content []byte      // a regular file with this content, when From and Link are empty
	From    string      // copy this host file or folder (recursively)
	Link    string      // a symlink to this target
	Mode    fs.FileMode // for Content; default 0644
}

// imageTar writes the root file system with the layers added, as one tar stream.
func imageTar(w io.Writer, rootfs string, layers []layer) error {
	f, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(w)
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	have := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		have[strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")] = true
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	now := time.Now()
	dirs := func(name string) error {
		var parents []string
		for d := path.Dir(name); d != "." && d != "/" && !have[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			have[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./" + d + "/", Mode: 0o755, ModTime: now}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, l := range layers {
		if err := dirs(l.Name); err != nil {
			return err
		}
		switch {
		case l.Link != "":
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./" + l.Name, Linkname: l.Link, Mode: 0o777, ModTime: now})
		case l.From != "":
			err = addTree(tw, l.From, l.Name, have)
		default:
			mode := l.Mode
			if mode == 0 {
				mode = 0o644
			}
			if mode.IsDir() {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./" + l.Name + "/", Mode: int64(mode.Perm()), ModTime: now})
				have[l.Name] = true
				break
			}
			if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./" + l.Name, Mode: int64(mode.Perm()), Size: int64(len(l.Content)), ModTime: now}); err == nil {
				_, err = tw.Write(l.Content)
			}
		}
		if err != nil {
			return fmt.Errorf("adding /%s: %w", l.Name, err)
		}
	}
	return tw.Close()
}

// addTree adds the host file or folder src as name, following no symlinks.
func addTree(tw *tar.Writer, src, name string, have map[string]bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(name, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = "./" + target
		if d.IsDir() {
			h.Name += "/"
			have[target] = true
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

// baseImage is a stand-in base image: the root file system, some layers and the
// image configuration given to `import --change`.
type baseImage struct {
	Name    string
	Layers  []layer
	Changes []string
}

// baseImages describes the three stand-ins.
func baseImages(t *testing.T) []baseImage {
	t.Helper()
	root := repoRoot(t)
	goroot := strings.TrimSpace(must(t, command{Args: []string{"go", "env", "GOROOT"}}).Stdout)
	standin, err := os.ReadFile(filepath.Join(root, "e2e", "testdata", "kai-standin.py"))
	if err != nil {
		t.Fatalf("the Kai stand-in server: %v", err)
	}
	return []baseImage{
		{
			// Like golang:1.26-bookworm: Go in /usr/local/go, GOPATH=/go. The module cache
			// is filled and GOPROXY=off, so `go mod download` works without a network
			// and fails loudly if go.mod needs anything more.
			Name: goImage,
			Layers: []layer{
				{Name: "usr/local/go", From: goroot},
				{Name: "go/pkg/mod", From: goModCache(t)},
			},
			Changes: []string{
				"ENV PATH=/go/bin:/usr/local/go/bin:" + stdPath,
				"ENV GOPATH=/go", "ENV GOTOOLCHAIN=local", "ENV GOPROXY=off",
				"WORKDIR /go", `CMD ["bash"]`,
			},
		},
		{
			// Like quay.io/konveyor/kai-solution-server: a non-root user, port 8000, and
			// `python3.12 -m kai_mcp_solution_server` (here starting kai-standin.py).
			Name: kaiImage,
			Layers: []layer{
				{Name: "opt/kai-standin/kai-standin.py", Content: standin, Mode: 0o755},
				{Name: "usr/local/lib/python3.11/dist-packages/kai_mcp_solution_server",
					From: filepath.Join(root, "e2e", "containers", "testdata", "kai_mcp_solution_server")},
				{Name: "usr/local/bin/python3.12", Link: "/usr/bin/python3"},
				{Name: "opt/upstream/upstream.py", From: filepath.Join(root, "e2e", "containers", "testdata", "upstream.py")},
			},
			Changes: []string{
				"ENV PATH=" + stdPath, "USER 1001", "EXPOSE 8000",
				`CMD ["sh", "-c", "python3.12 -m kai_mcp_solution_server --transport streamable-http --host 0.0.0.0 --port 8000 --mount-path=${MOUNT_PATH:-/}"]`,
			},
		},
		{
			// Like mitmproxy/mitmproxy: mitmdump on PATH, confdir in /home/mitmproxy/.mitmproxy.
			Name:    mitmImage,
			Layers:  []layer{{Name: "home/mitmproxy/.mitmproxy", Mode: fs.ModeDir | 0o755}},
			Changes: []string{"ENV PATH=" + stdPath, "EXPOSE 8080", `CMD ["mitmdump"]`},
		},
	}
}

// importImages imports the stand-in base images into the engine.
func (e *engine) importImages(t *testing.T) {
	t.Helper()
	rootfs := rootfsTar(t)
	for _, img := range baseImages(t) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(imageTar(pw, rootfs, img.Layers)) }()
		args := []string{"import"}
		for _, c := range img.Changes {
			args = append(args, "--change", c)
		}
		r := execute(t, e.cmd(append(args, "-", img.Name)...).withStdin(pr).withTimeout(5*time.Minute))
		pr.Close()
		if r.Err != nil {
			t.Fatalf("%s import %s: %v\n%s", e.Name, img.Name, r.Err, r)
		}
	}
}
