package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"
)

// goClientMain is the Go net/http client: the test binary runs as this
// when KAI_E2E_GO_CLIENT=1, exec'd by kai-entrypoint like the stand-in. It
// uses http.DefaultTransport as it is (ProxyFromEnvironment, system roots,
// hence HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE), and prints the same JSON
// document as kai-standin.py's clients mode.
func goClientMain(urls []string) int {
	client := &http.Client{Timeout: 15 * time.Second}
	doc := report{Standin: "go-net/http", Versions: map[string]any{"go": runtime.Version()}}
	doc.OK = len(urls) > 0
	for _, u := range urls {
		r := goCall(client, u)
		doc.OK = doc.OK && r.OK
		doc.Results = append(doc.Results, r)
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go client:", err)
		return 2
	}
	os.Stdout.WriteString(redactProxyPasswords(string(b)) + "\n")
	if !doc.OK {
		return 1
	}
	return 0
}

func goCall(client *http.Client, u string) result {
	r := result{Client: "go", URL: u, Method: http.MethodGet}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	var resp *http.Response
	var err error
	if strings.HasSuffix(u, "/chat/completions") {
		r.Method = http.MethodPost
		body := `{"model":"fake-gpt","messages":[{"role":"user","content":"ping"}]}`
		resp, err = client.Post(u, "application/json", bytes.NewBufferString(body))
	} else {
		resp, err = client.Get(u)
	}
	if err != nil {
		r.ErrorClass = fmt.Sprintf("%T", err)
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		r.ErrorClass = fmt.Sprintf("%T", err)
		r.Error = err.Error()
		return r
	}
	r.Status = resp.StatusCode
	r.OK = resp.StatusCode/100 == 2
	var body map[string]any
	if json.Unmarshal(b, &body) == nil {
		r.Body, _ = json.Marshal(body)
		if v, ok := body["x_via_mitm"].(string); ok {
			r.XViaMitm = &v
		}
	} else {
		r.Body, _ = json.Marshal(string(b))
	}
	return r
}

// redactProxyPasswords hides any proxy password of the environment, raw or
// percent-encoded, as the stand-in does.
func redactProxyPasswords(s string) string {
	for _, name := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		u, err := url.Parse(os.Getenv(name))
		if err != nil || u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "***")
			s = strings.ReplaceAll(s, url.UserPassword("", pw).String()[1:], "***")
		}
	}
	return s
}
