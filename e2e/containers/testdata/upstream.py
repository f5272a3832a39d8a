#!/usr/bin/python3
"""HTTPS upstream for the container tests: an OpenAI-style /v1/models behind a
certificate from a throwaway CA that only the mitmproxy sidecar trusts.

  upstream.py CERT KEY PORT

GET /v1/models returns a model list plus "x_via_mitm", the value of the request's
X-Via-Mitm header (the sidecar stamps it), so a client's result proves the flow
went through mitmproxy. SIGTERM stops the server at once.
"""

import http.server
import json
import signal
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/v1/models":
            self.send_error(404)
            return
        body = json.dumps({
            "object": "list",
            "data": [{"id": "fake-gpt", "object": "model", "owned_by": "kai-test"}],
            "x_via_mitm": self.headers.get("X-Via-Mitm"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: %s %s\n" % (self.address_string(), fmt % args))


def main():
    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print("upstream: listening on https://0.0.0.0:%d" % port, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
