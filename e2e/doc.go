// Package e2e is kai-entrypoint's end-to-end suite: a real mitmproxy
// (mitmdump), real Python HTTP clients (requests, httpx, aiohttp, urllib),
// curl and Go's net/http, Java's HttpClient and HttpsURLConnection and
// Maven, all started through kai-entrypoint built from the tree, against an
// HTTPS upstream on a loopback address.
//
// Run it with
//
//	go test -count=1 ./e2e/
//
// It needs root (for a private mount and PID namespace made with unshare),
// and the Debian packages mitmproxy, python3-requests, python3-httpx,
// python3-aiohttp, curl, openssl, util-linux, ca-certificates,
// openjdk-17-jdk-headless and maven. With CI=true
// a missing dependency fails the suite; otherwise the tests skip and name the
// package to install.
//
// The suite has only test files; this file holds the package documentation.
package e2e
