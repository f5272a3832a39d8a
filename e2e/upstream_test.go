package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testpki"
)

// completion is the fixed answer of the fake /v1/chat/completions.
const completion = "pong from the kai-entrypoint e2e upstream"

// testCA is a throwaway certificate authority made for one suite run.
type testCA = testpki.CA

func newCA(name string) (*testCA, error) { return testpki.NewCA(name) }

// tlsServer is a fake OpenAI-style HTTPS endpoint (and the same over plain
// HTTP on another port). It echoes the X-Via-Mitm
// header that mitmdump adds (--modify-headers), as "x_via_mitm", so a client
// can prove its request went through the proxy.
type tlsServer struct {
	host      string // name in the private /etc/hosts
	port      string // HTTPS
	plainPort string // plain HTTP
	ca        *testCA
	caFile    string // the issuing CA, PEM
	srv       *http.Server
}

func startTLSServer(ca *testCA, host, ip, dir string) (*tlsServer, error) {
	cert, ln, plain, err := listenPair(ca, host, ip)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, plainPort, _ := net.SplitHostPort(plain.Addr().String())
	s := &tlsServer{host: host, port: port, plainPort: plainPort, ca: ca, caFile: filepath.Join(dir, host+"-ca.pem")}
	if err := os.WriteFile(s.caFile, ca.PEM, 0o644); err != nil {
		ln.Close()
		plain.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = newServer(mux, cert)
	go s.srv.Serve(tls.NewListener(ln, s.srv.TLSConfig))
	go s.srv.Serve(plain)
	return s, nil
}

// listenPair issues ca's server certificate for host and ip, and opens two
// listeners on ip: one for HTTPS, one for plain HTTP.
func listenPair(ca *testCA, host, ip string) (cert tls.Certificate, tlsLn, plain net.Listener, err error) {
	if cert, err = ca.Server(host, ip); err != nil {
		return cert, nil, nil, err
	}
	if tlsLn, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
		return cert, nil, nil, err
	}
	if plain, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
		tlsLn.Close()
		return cert, nil, nil, err
	}
	return cert, tlsLn, plain, nil
}

// newServer serves h with cert over TLS, discarding its error log.
func newServer(h http.Handler, cert tls.Certificate) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		// Handshake failures are expected in the negative scenarios.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// URL returns https://host:port + path.
func (s *tlsServer) URL(path string) string {
	return "https://" + net.JoinHostPort(s.host, s.port) + path
}

// PlainURL returns the same endpoint over plain HTTP (its own port), to
// exercise HTTP_PROXY/http_proxy.
func (s *tlsServer) PlainURL(path string) string {
	return "http://" + net.JoinHostPort(s.host, s.plainPort) + path
}

// HostPort returns host:port as mitmdump logs it.
func (s *tlsServer) HostPort() string { return net.JoinHostPort(s.host, s.port) }

// PlainHostPort returns host:port of the plain HTTP listener.
func (s *tlsServer) PlainHostPort() string { return net.JoinHostPort(s.host, s.plainPort) }

func (s *tlsServer) Close() { s.srv.Close() }

func (s *tlsServer) models(w http.ResponseWriter, r *http.Request) {
	via := r.Header.Get("X-Via-Mitm")
	writeJSON(w, http.StatusOK, map[string]any{
		"object":     "list",
		"data":       []map[string]any{{"id": "fake-gpt", "object": "model", "owned_by": "kai-e2e"}},
		"x_via_mitm": via,
		"served_by":  s.host,
	})
}

func (s *tlsServer) chat(w http.ResponseWriter, r *http.Request) {
	via := r.Header.Get("X-Via-Mitm")
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role, Content string
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "want an OpenAI chat request", "x_via_mitm": via})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": "want application/json", "x_via_mitm": via})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      "chatcmpl-kai-e2e",
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]string{"role": "assistant", "content": completion},
			"finish_reason": "stop",
		}},
		"x_via_mitm": via,
		"served_by":  s.host,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
