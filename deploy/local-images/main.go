// Command local-images makes local stand-ins for the public images the Dockerfile and
// docker-compose.yml start from, for a machine that reaches no container registry, and
// imports them into Docker or Podman. The container tests (e2e/containers) use it too.
//
//	go run ./deploy/local-images [-cache DIR] docker|podman|PATH-TO-CLI
//
// It runs as root, from the repository. All three images share one Debian root file
// system made with debootstrap (about 80 s; it is kept in the cache folder, and so is a
// Go module cache, so a second run only imports). On stdout it prints the variables
// that name the images, as NAME=value lines, for `--build-arg` or compose's .env; the
// progress goes to stderr. The engine's own variables (DOCKER_HOST, CONTAINERS_CONF,
// ...) are passed to its CLI unchanged.
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/mounts"
)

// The stand-ins share one Debian root file system: python3 with the HTTP clients Kai
// uses (for the Kai stand-in), mitmproxy (for the sidecar) and curl.
var (
	debianSuite    = "bookworm"
	debianMirror   = "http://deb.debian.org/debian"
	rootfsPackages = []string{"ca-certificates", "curl", "python3", "python3-requests",
		"python3-httpx", "python3-aiohttp", "mitmproxy",
		// debootstrap does not resolve virtual packages: python3-cryptography needs
		// python3-cffi-backend-api-min, which only this package provides.
		"python3-cffi-backend"}
)

const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func main() {
	log.SetFlags(0)
	log.SetPrefix("local-images: ")
	cache := flag.String("cache", "/var/cache/kai-entrypoint-local",
		"folder for the root file system and the Go module cache; anything missing in it is remade")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: go run ./deploy/local-images [-cache DIR] docker|podman|PATH-TO-CLI")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *cache); err != nil {
		log.Fatal(err)
	}
}

func run(engine, cache string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	rootfs, modcache, err := prepare(root, cache)
	if err != nil {
		return err
	}
	images, err := standins(root, modcache)
	if err != nil {
		return err
	}
	for _, img := range images {
		start := time.Now()
		if err := importImage(engine, rootfs, img); err != nil {
			return fmt.Errorf("%s import %s: %w", engine, img.Name, err)
		}
		log.Printf("%s: imported %s in %s", engine, img.Name, time.Since(start).Round(time.Second))
	}
	for _, img := range images {
		fmt.Printf("%s=%s\n", img.Var, img.Name)
	}
	return nil
}

// repoRoot is the folder of the go.mod that `go` finds from the working folder.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		return "", fmt.Errorf("not run from the kai-entrypoint repository: %w", err)
	}
	return root, nil
}

// prepare makes what the cache lacks: the root file system as a tar, and a module cache
// with what go.mod needs. A lock on the cache folder keeps two runs from making them twice.
func prepare(root, cache string) (rootfs, modcache string, err error) {
	lock, err := os.Open(cache)
	if err != nil {
		return "", "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("locking %s: %w", cache, err)
	}
	if rootfs, err = rootfsTar(cache); err != nil {
		return "", "", err
	}
	modcache = filepath.Join(cache, "gomodcache")
	cmd := exec.Command("go", "mod", "download")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "GOMODCACHE="+modcache, "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local")
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go mod download into %s: %w", modcache, err)
	}
	return rootfs, modcache, nil
}

// rootfsTar returns the tar of the Debian root file system in cache, made now with
// debootstrap when it is missing or unreadable. Its name changes with the package list.
func rootfsTar(cache string) (string, error) {
	sum := sha256.Sum256([]byte(strings.Join(append([]string{debianSuite, debianMirror, "minbase"}, rootfsPackages...), "\n")))
	name := fmt.Sprintf("rootfs-%s-%s.tar", debianSuite, hex.EncodeToString(sum[:6]))
	file := filepath.Join(cache, name)
	if err := checkTar(file); err == nil {
		log.Printf("using the cached root file system %s", file)
		return file, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Printf("remaking the cached %s: %v", file, err)
	}
	work, err := os.MkdirTemp(cache, "debootstrap-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err := mounts.RemoveTree(work); err != nil {
			log.Print(err)
		}
	}()
	rootDir := filepath.Join(work, "rootfs")
	log.Printf("debootstrap %s into %s (about 80 s)", debianSuite, rootDir)
	if err := runLogged("debootstrap", "--variant=minbase", "--include="+strings.Join(rootfsPackages, ","),
		debianSuite, rootDir, debianMirror); err != nil {
		if b, _ := os.ReadFile(filepath.Join(rootDir, "debootstrap", "debootstrap.log")); len(b) > 0 {
			log.Printf("the end of debootstrap.log:\n%s", b[max(0, len(b)-6000):])
		}
		return "", err
	}
	part := filepath.Join(work, name)
	if err := runLogged("tar", "--numeric-owner", "--xattrs", "-C", rootDir, "-cf", part,
		"--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*", "."); err != nil {
		return "", err
	}
	return file, os.Rename(part, file)
}

// runLogged runs a command with its output on stderr.
func runLogged(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// checkTar confirms file is a readable tar that holds mitmdump.
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
			return errors.New("no usr/bin/mitmdump in the archive")
		}
		if err != nil {
			return err
		}
		if strings.TrimPrefix(h.Name, "./") == "usr/bin/mitmdump" {
			return nil
		}
	}
}

// image is one stand-in: the root file system plus some layers, with the image
// configuration given to `import --change`, and the variable that names it.
type image struct {
	Var     string // GO_IMAGE, KAI_IMAGE or MITMPROXY_IMAGE
	Name    string
	Layers  []layer
	Changes []string
}

// layer is something added to the root file system for one image.
type layer struct {
	Name    string      // path in the image, without a leading slash
	Content []byte      // a regular file with this content, when From and Link are empty
	From    string      // copy this host file or folder (recursively)
	Link    string      // a symlink to this target
	Mode    fs.FileMode // for Content; default 0644
}

// standins describes the three images.
func standins(root, modcache string) ([]image, error) {
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT GOVERSION: %w", err)
	}
	goEnv := strings.Fields(string(out))
	if len(goEnv) != 2 {
		return nil, fmt.Errorf("go env GOROOT GOVERSION printed %q", out)
	}
	standin, err := os.ReadFile(filepath.Join(root, "e2e", "testdata", "kai-standin.py"))
	if err != nil {
		return nil, err
	}
	return []image{
		{
			// Like golang:1.26-bookworm, with this machine's Go: Go in /usr/local/go,
			// GOPATH=/go. The module cache holds what go.mod needs and GOPROXY=off, so the
			// Dockerfile's `go mod download` needs no network and fails loudly if go.mod
			// needs anything more.
			Var: "GO_IMAGE", Name: "localhost/kai-local/golang:" + strings.TrimPrefix(goEnv[1], "go"),
			Layers: []layer{
				{Name: "usr/local/go", From: goEnv[0]},
				{Name: "go/pkg/mod", From: modcache},
			},
			Changes: []string{
				"ENV PATH=/go/bin:/usr/local/go/bin:" + stdPath,
				"ENV GOPATH=/go", "ENV GOTOOLCHAIN=local", "ENV GOPROXY=off",
				"WORKDIR /go", `CMD ["bash"]`,
			},
		},
		{
			// Like quay.io/konveyor/kai-solution-server: a non-root user, port 8000, and
			// `python3.12 -m kai_mcp_solution_server`, here starting e2e/testdata/kai-standin.py,
			// a stand-in that answers /health and /probe?url=URL (the URL fetched with each of
			// Kai's HTTP clients). It also holds the HTTPS upstream the tests use.
			Var: "KAI_IMAGE", Name: "localhost/kai-local/kai-solution-server:latest",
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
			Var: "MITMPROXY_IMAGE", Name: "localhost/kai-local/mitmproxy:latest",
			Layers:  []layer{{Name: "home/mitmproxy/.mitmproxy", Mode: fs.ModeDir | 0o755}},
			Changes: []string{"ENV PATH=" + stdPath, "EXPOSE 8080", `CMD ["mitmdump"]`},
		},
	}, nil
}

// importImage streams the root file system with img's layers into `ENGINE import`.
func importImage(engine, rootfs string, img image) error {
	args := []string{"import"}
	for _, c := range img.Changes {
		args = append(args, "--change", c)
	}
	cmd := exec.Command(engine, append(args, "-", img.Name)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() { pw.CloseWithError(imageTar(pw, rootfs, img.Layers)) }()
	err := cmd.Run()
	pr.Close()
	return err
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
