package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestProbeWritesAndExecsNothing: with an extra CA found and a command
// given, --probe builds the plan, answers, and neither writes the bundle
// nor runs the command.
func TestProbeWritesAndExecsNothing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	dir := t.TempDir()
	writeCA(t, dir+"/certs/extra.pem", "Probe Extra CA", false)
	os.MkdirAll(dir+"/bin", 0o755)
	os.WriteFile(dir+"/bin/my-tool", []byte("#!/bin/sh\necho my-tool ran\n"), 0o755)

	r := runShim(t, append(baseEnv(dir), "KAI_ENV_PATH="+dir+"/bin"), "--probe", srv.URL+"/v1/models", "my-tool")
	if r.code != 0 || !strings.Contains(r.stdout, "GET answered HTTP/1.1 200 OK") {
		t.Errorf("exit %d, want 0 and the GET answered\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "my-tool ran") {
		t.Errorf("--probe ran the command:\n%s", r.stdout)
	}
	if _, err := os.Stat(dir + "/out/ca-bundle.pem"); err == nil {
		t.Error("--probe wrote the CA bundle")
	}
}
