package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// sdkServer is the upstream of the Debian 13 SDK suite (sdk_test.go): one
// HTTPS listener (HTTP/1.1 and HTTP/2) and one plain-HTTP listener on the
// same address, serving what each client of Kai's stack asks for, under a
// per-call prefix /r/RUN/CLIENT/:
//
//	GET  v1/models, POST v1/chat/completions   OpenAI (the e2e upstream's handlers)
//	POST model/MODEL/converse                  Bedrock's Converse (boto3)
//	POST api/chat                              Ollama
//	GET  git/repo.git/...                      a bare repository over git's dumb HTTP
//	GET  simple/kai-probe/, files/WHEEL        a PEP 503 simple index with one wheel
//
// and, for any path, a gRPC unary call (content-type application/grpc) that
// names its run in the x-kai-run metadata. It records the X-Via-Mitm stamp
// of every request by RUN/CLIENT, so a client whose library hides the
// response (git, pip, boto3) still shows whether it went through mitmdump.
type sdkServer struct {
	host      string
	port      string // HTTPS
	plainPort string // plain HTTP
	srv       *http.Server

	mu   sync.Mutex
	seen map[string][]string // RUN/CLIENT -> X-Via-Mitm of each request
}

// sdkContent is what the git and pip routes serve, made once per suite.
type sdkContent struct {
	gitDir      string // a bare repository prepared for dumb HTTP
	wheel       []byte
	wheelName   string
	wheelSHA256 string
}

const ollamaReply = "pong from the kai-entrypoint e2e ollama"

func startSDKServer(ca *testCA, host, ip string, content *sdkContent) (*sdkServer, error) {
	cert, ln, plain, err := listenPair(ca, host, ip)
	if err != nil {
		return nil, err
	}
	s := &sdkServer{host: host, seen: map[string][]string{}}
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	_, s.plainPort, _ = net.SplitHostPort(plain.Addr().String())
	openai := &tlsServer{host: host}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /r/{run}/{client}/v1/models", openai.models)
	mux.HandleFunc("POST /r/{run}/{client}/v1/chat/completions", openai.chat)
	mux.HandleFunc("POST /r/{run}/{client}/model/{model}/converse", converse)
	mux.HandleFunc("POST /r/{run}/{client}/api/chat", ollamaChat)
	mux.HandleFunc("GET /r/{run}/{client}/git/repo.git/{file...}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(content.gitDir, filepath.FromSlash(r.PathValue("file"))))
	})
	mux.HandleFunc("GET /r/{run}/{client}/simple/kai-probe/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"../../files/%s#sha256=%s\">%[1]s</a></body></html>\n",
			content.wheelName, content.wheelSHA256)
	})
	mux.HandleFunc("GET /r/{run}/{client}/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != content.wheelName {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(content.wheel)
	})
	s.srv = newServer(s.record(mux), cert)
	// HTTP/2, which gRPC needs, named in the server's own TLS config: left
	// to ServeTLS, it was set up only when ServeTLS ran before Serve(plain),
	// and otherwise offered in ALPN with no handler behind it, so that
	// h2 connections (gRPC, curl and git through mitmdump) closed at once.
	s.srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	go s.srv.ServeTLS(ln, "", "")
	go s.srv.Serve(plain)
	return s, nil
}

// record notes each request's stamp under RUN/CLIENT (RUN/grpc for gRPC)
// before serving it, so the note is there when the client has its answer.
func (s *sdkServer) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.note(r.Header.Get("X-Kai-Run")+"/grpc", r.Header.Get("X-Via-Mitm"))
			grpcEcho(w, r)
			return
		}
		if f := strings.SplitN(r.URL.Path, "/", 5); len(f) == 5 && f[1] == "r" {
			s.note(f[2]+"/"+f[3], r.Header.Get("X-Via-Mitm"))
		}
		next.ServeHTTP(w, r)
	})
}

func (s *sdkServer) note(key, stamp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[key] = append(s.seen[key], stamp)
}

// stamps returns the X-Via-Mitm values of the requests client made in run.
func (s *sdkServer) stamps(run, client string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen[run+"/"+client]...)
}

// URL is https://host:port, the base every client's prefix goes under.
func (s *sdkServer) URL() string { return "https://" + net.JoinHostPort(s.host, s.port) }

// PlainURL is the same over plain HTTP.
func (s *sdkServer) PlainURL() string { return "http://" + net.JoinHostPort(s.host, s.plainPort) }

func (s *sdkServer) HostPort() string { return net.JoinHostPort(s.host, s.port) }

func (s *sdkServer) Close() { s.srv.Close() }

// converse answers Bedrock's Converse API as boto3 parses it.
func converse(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"output": map[string]any{"message": map[string]any{
			"role": "assistant", "content": []map[string]string{{"text": completion}},
		}},
		"stopReason": "end_turn",
		"usage":      map[string]int{"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
		"metrics":    map[string]int{"latencyMs": 1},
	})
}

// ollamaChat answers Ollama's /api/chat without streaming.
func ollamaChat(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"model":      "kai-local",
		"created_at": time.Now().UTC().Format(time.RFC3339Nano),
		"message":    map[string]string{"role": "assistant", "content": ollamaReply},
		"done":       true,
	})
}

// grpcEcho answers any gRPC unary call with the request message, framed
// as gRPC frames it, and status OK in the trailers.
func grpcEcho(w http.ResponseWriter, r *http.Request) {
	var prefix [5]byte
	if _, err := io.ReadFull(r.Body, prefix[:]); err != nil {
		http.Error(w, "no gRPC message", http.StatusBadRequest)
		return
	}
	msg := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
	if _, err := io.ReadFull(r.Body, msg); err != nil {
		http.Error(w, "short gRPC message", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	w.Write(append(prefix[:], msg...))
	w.Header().Set("Grpc-Status", "0")
}

// newSDKContent makes the git repository (with the host's git) and the
// wheel under dir.
func newSDKContent(dir string) (*sdkContent, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &sdkContent{gitDir: filepath.Join(dir, "repo.git")}
	work := filepath.Join(dir, "repo-work")
	env := vars{"PATH": "/usr/bin:/bin", "HOME": dir, "GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME": "kai-e2e", "GIT_AUTHOR_EMAIL": "e2e@kai.test",
		"GIT_COMMITTER_NAME": "kai-e2e", "GIT_COMMITTER_EMAIL": "e2e@kai.test"}
	for _, argv := range [][]string{
		{"git", "init", "-q", "-b", "main", work},
		{"git", "-C", work, "commit", "-q", "--allow-empty", "-m", "kai-entrypoint e2e"},
		{"git", "clone", "-q", "--bare", work, c.gitDir},
		{"git", "-C", c.gitDir, "update-server-info"},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env.list()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%q: %v\n%s (Debian package: git)", argv, err, out)
		}
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct{ name, text string }{
		{name: "kai_probe/__init__.py", text: ""},
		{name: "kai_probe-1.0.dist-info/METADATA", text: "Metadata-Version: 2.1\nName: kai-probe\nVersion: 1.0\n"},
		{name: "kai_probe-1.0.dist-info/WHEEL", text: "Wheel-Version: 1.0\nGenerator: kai-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{name: "kai_probe-1.0.dist-info/RECORD", text: ""},
	} {
		fw, err := z.Create(f.name)
		if err != nil {
			return nil, err
		}
		io.WriteString(fw, f.text)
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	c.wheel, c.wheelName = buf.Bytes(), "kai_probe-1.0-py3-none-any.whl"
	sum := sha256.Sum256(c.wheel)
	c.wheelSHA256 = hex.EncodeToString(sum[:])
	return c, nil
}
