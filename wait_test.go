package main

// KAI_WAIT against things that really arrive late: a CA file written in two
// halves, as mitmproxy writes its own, and a proxy port that opens late.

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startShim starts the shim and returns once it logs that it waits.
// done receives the result of cmd.Wait.
func startShim(t *testing.T, env []string, args ...string) (done chan error, stdout, stderr *syncBuffer) {
	t.Helper()
	cmd := exec.Command(shim, args...)
	cmd.Env = env
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("the shim never started waiting:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done, stdout, stderr
}

// stillRunning fails the test if the shim has already exited.
func stillRunning(t *testing.T, done chan error, stderr *syncBuffer, why string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("the shim ended (%v) %s:\n%s", err, why, stderr)
	case <-time.After(400 * time.Millisecond):
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestWaitForCertWrittenInTwoHalves(t *testing.T) {
	dir := t.TempDir()
	caFile := dir + "/sidecar/mitmproxy-ca-cert.pem"
	caPEM := writeCA(t, dir+"/template.pem", "Late Sidecar CA", false)
	os.MkdirAll(dir+"/sidecar", 0o755)
	env := append(baseEnv(dir)[:3], "KAI_CERT_DIRS="+caFile, "KAI_WAIT=20s", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
	done, stdout, stderr := startShim(t, env, "/bin/sh", "-c", `echo "SSL_CERT_FILE=$SSL_CERT_FILE"`)

	stillRunning(t, done, stderr, "before the CA file exists")
	half := len(caPEM) / 2
	if err := os.WriteFile(caFile, caPEM[:half], 0o644); err != nil { // truncate, then write: like mitmproxy
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the shim went on (%v) with half a certificate:\n%s", err, stderr)
	case <-time.After(600 * time.Millisecond):
	}
	f, _ := os.OpenFile(caFile, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(caPEM[half:])
	f.Close()
	select {
	case err := <-done:
		if exitCode(err) != 0 {
			t.Fatalf("exit %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the shim did not go on once the CA was whole:\n%s", stderr)
	}
	if want := "SSL_CERT_FILE=" + dir + "/out/ca-bundle.pem\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr.String(), "ready after") {
		t.Errorf("no 'ready after' line:\n%s", stderr)
	}
	bundle, _ := os.ReadFile(dir + "/out/ca-bundle.pem")
	if !bytes.Contains(bundle, bytes.TrimSpace(caPEM)) {
		t.Error("the bundle lacks the late CA")
	}
}

func TestWaitForLateProxyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // free until the "sidecar" opens it
	dir := t.TempDir()
	env := append(baseEnv(dir)[:3], "KAI_PROXY_HTTPS=http://"+addr, "KAI_WAIT=20s")
	done, stdout, stderr := startShim(t, env, "/bin/sh", "-c", `echo "$HTTPS_PROXY"`)
	stillRunning(t, done, stderr, "before the proxy port opened")
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("reopening %s: %v", addr, err)
	}
	defer l.Close()
	select {
	case err := <-done:
		if exitCode(err) != 0 {
			t.Fatalf("exit %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the shim did not go on once the port was open:\n%s", stderr)
	}
	if stdout.String() != "http://"+addr+"\n" {
		t.Errorf("stdout %q", stdout)
	}
}

func TestWaitTimeoutListsWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	env := append(baseEnv(dir)[:3], "KAI_CERT_DIRS="+dir+"/never.pem,"+dir+"/certs",
		"KAI_PROXY_HTTP=127.0.0.1:"+strconv.Itoa(port), "KAI_WAIT=1500ms")
	start := time.Now()
	r := runShim(t, env, "/bin/true")
	took := time.Since(start)
	if r.code != 78 {
		t.Fatalf("exit %d, want 78\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		`KAI_WAIT=1.5s: still not ready: KAI_CERT_DIRS entry "` + dir + `/never.pem": does not exist`,
		`KAI_WAIT=1.5s: still not ready: KAI_CERT_DIRS entry "` + dir + `/certs": no certificate yet`,
		`KAI_WAIT=1.5s: still not ready: KAI_PROXY_HTTP: proxy 127.0.0.1:` + strconv.Itoa(port) + ` does not accept connections: connection refused`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if took < 1400*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v for a 1.5s wait", took)
	}
}
