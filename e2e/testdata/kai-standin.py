#!/usr/bin/python3
"""kai-standin: a stand-in for a Kai server, for kai-entrypoint's end-to-end tests.

It calls HTTPS URLs with the HTTP clients Kai's providers use and reports, per
client, success or the exact error. Proxies and CA bundles come ONLY from the
environment (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, REQUESTS_CA_BUNDLE, ...):
no client is given proxy=, verify= or cafile= arguments. That is the point:
it shows what kai-entrypoint's exported variables do to real clients.

Run it with Debian's /usr/bin/python3 (packages python3-requests,
python3-httpx, python3-aiohttp, curl). A client whose module is missing is
reported as an error for that client, not as a crash.

Usage
-----
  kai-standin.py clients --url URL [--url URL ...] [--client NAME ...] [--timeout SECONDS]
      Call every URL with every client, print one JSON document on stdout,
      exit 0 if every call succeeded (HTTP 2xx), 1 otherwise, 2 on usage error.

  kai-standin.py serve [--host HOST] [--port PORT] [--url URL ...] [--client NAME ...] [--timeout SECONDS]
      HTTP server (default 127.0.0.1:8080; port 0 picks a free port).
        GET /health                   -> 200 {"status": "ok"}
        GET /probe[?url=U&url=U2]     -> the JSON document of `clients` for
                                         the query URLs, else the --url URLs;
                                         200 if all calls succeeded, else 502
        optional &client=NAME selects clients, as --client does.
      Prints "kai-standin: listening on http://HOST:PORT" on stdout when ready.
      SIGTERM or SIGINT: stops serving and exits 0.

  kai-standin.py versions
      Print the JSON object of client versions and exit 0.

Clients (NAME): requests, httpx, aiohttp (ClientSession(trust_env=True)),
urllib (urllib.request.urlopen), curl (the curl binary on PATH).

Method: a URL whose path ends in /chat/completions is POSTed an OpenAI-style
chat request (model "fake-gpt", one user message "ping"); any other URL gets GET.

Output (clients, /probe):
  {"standin": "kai-standin", "ok": bool, "versions": {...},
   "env": {"HTTPS_PROXY": "http://user:***@host:port", ...},   (credentials redacted)
   "results": [{"client": NAME, "url": URL, "method": "GET"|"POST",
                "ok": bool,                 # HTTP status 2xx
                "status": int|null,         # HTTP status, null when no response
                "x_via_mitm": str|null,     # the upstream's echoed proxy stamp
                "body": object|str|null,    # parsed JSON body, else text (max 2000 chars)
                "error_class": str|null,    # e.g. "requests.exceptions.SSLError"
                "error": str|null,          # str() of the exception, or curl's stderr
                "exit_code": int|null,      # curl only
                "seconds": float}]}
Any proxy password found in the environment is replaced by "***" in the output.
"""

import argparse
import asyncio
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENTS = ("requests", "httpx", "aiohttp", "urllib", "curl")

# Variables reported back (values redacted) so a reader can see what the
# clients were given.
ENV_REPORTED = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
    "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
PROXY_VARS = ENV_REPORTED[:8]

CHAT_REQUEST = {"model": "fake-gpt", "messages": [{"role": "user", "content": "ping"}]}
BODY_LIMIT = 2000
CURL_STATUS_MARK = "\n__kai_standin_status__="


def secrets():
    """Return the proxy passwords present in the environment, raw and quoted."""
    found = set()
    for name in PROXY_VARS:
        value = os.environ.get(name, "")
        try:
            parts = urllib.parse.urlsplit(value if "://" in value else "http://" + value)
        except ValueError:
            continue
        netloc = parts.netloc
        if "@" not in netloc:
            continue
        userinfo = netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            for s in (raw, urllib.parse.unquote(raw)):
                if s:
                    found.add(s)
    return sorted(found, key=len, reverse=True)


def redact(text, hidden):
    for s in hidden:
        text = text.replace(s, "***")
    return text


def method_for(url):
    return "POST" if urllib.parse.urlsplit(url).path.endswith("/chat/completions") else "GET"


def new_result(client, url):
    return {
        "client": client, "url": url, "method": method_for(url), "ok": False,
        "status": None, "x_via_mitm": None, "body": None, "error_class": None,
        "error": None, "exit_code": None, "seconds": 0.0,
    }


def fill_body(result, status, text):
    result["status"] = status
    result["ok"] = 200 <= status < 300
    try:
        body = json.loads(text)
    except ValueError:
        result["body"] = text[:BODY_LIMIT]
        return
    result["body"] = body
    if isinstance(body, dict):
        result["x_via_mitm"] = body.get("x_via_mitm")


def fill_error(result, exc):
    cls = type(exc)
    result["error_class"] = cls.__module__ + "." + cls.__qualname__
    result["error"] = str(exc)


def call_requests(url, timeout):
    import requests
    if method_for(url) == "POST":
        r = requests.post(url, json=CHAT_REQUEST, timeout=timeout)
    else:
        r = requests.get(url, timeout=timeout)
    return r.status_code, r.text


def call_httpx(url, timeout):
    import httpx
    if method_for(url) == "POST":
        r = httpx.post(url, json=CHAT_REQUEST, timeout=timeout)
    else:
        r = httpx.get(url, timeout=timeout)
    return r.status_code, r.text


def call_aiohttp(url, timeout):
    import aiohttp

    async def run():
        # trust_env=True is how Kai's providers build their sessions; without
        # it aiohttp never reads the proxy variables.
        async with aiohttp.ClientSession(
            trust_env=True, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as session:
            if method_for(url) == "POST":
                ctx = session.post(url, json=CHAT_REQUEST)
            else:
                ctx = session.get(url)
            async with ctx as r:
                return r.status, await r.text()

    return asyncio.run(run())


def call_urllib(url, timeout):
    data, headers = None, {}
    if method_for(url) == "POST":
        data = json.dumps(CHAT_REQUEST).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method_for(url))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        # An HTTP error status is a response, not a transport failure.
        return e.code, e.read().decode("utf-8", "replace")


class CurlError(Exception):
    """curl exited non-zero; the message is curl's stderr."""


def call_curl(url, timeout, result):
    curl = shutil.which("curl")
    if curl is None:
        raise FileNotFoundError("curl not found on PATH (Debian package: curl)")
    cmd = [curl, "--silent", "--show-error", "--max-time", str(timeout),
           "--output", "-", "--write-out", CURL_STATUS_MARK + "%{http_code}"]
    if method_for(url) == "POST":
        cmd += ["--header", "Content-Type: application/json",
                "--data", json.dumps(CHAT_REQUEST)]
    cmd.append(url)
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    result["exit_code"] = p.returncode
    if p.returncode != 0:
        raise CurlError(p.stderr.decode("utf-8", "replace").strip())
    out = p.stdout.decode("utf-8", "replace")
    body, _, status = out.rpartition(CURL_STATUS_MARK)
    return int(status), body


def run_one(client, url, timeout):
    result = new_result(client, url)
    start = time.monotonic()
    try:
        if client == "requests":
            status, text = call_requests(url, timeout)
        elif client == "httpx":
            status, text = call_httpx(url, timeout)
        elif client == "aiohttp":
            status, text = call_aiohttp(url, timeout)
        elif client == "urllib":
            status, text = call_urllib(url, timeout)
        elif client == "curl":
            status, text = call_curl(url, timeout, result)
        else:
            raise ValueError("unknown client %r" % client)
        fill_body(result, status, text)
    except Exception as exc:  # report every failure, whatever its type
        fill_error(result, exc)
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def versions():
    v = {"python": sys.version.split()[0], "python_executable": sys.executable}
    try:
        import ssl
        v["openssl"] = ssl.OPENSSL_VERSION
    except ImportError:
        v["openssl"] = None
    for name in ("requests", "httpx", "aiohttp", "urllib3", "certifi"):
        try:
            v[name] = __import__(name).__version__
        except Exception:  # missing module: report it as absent
            v[name] = None
    v["urllib"] = v["python"]
    curl = shutil.which("curl")
    v["curl"] = None
    if curl:
        try:
            out = subprocess.run([curl, "--version"], capture_output=True, timeout=10).stdout
            v["curl"] = out.decode().split()[1]
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
    return v


def report(urls, clients, timeout):
    hidden = secrets()
    results = [run_one(c, u, timeout) for u in urls for c in clients]
    doc = {
        "standin": "kai-standin",
        "ok": bool(results) and all(r["ok"] for r in results),
        "versions": versions(),
        "env": {k: os.environ[k] for k in ENV_REPORTED if k in os.environ},
        "results": results,
    }
    return json.loads(redact(json.dumps(doc), hidden)) if hidden else doc


def dump(doc):
    hidden = secrets()
    return redact(json.dumps(doc, indent=1, sort_keys=True), hidden) + "\n"


def check_clients(names):
    for n in names:
        if n not in CLIENTS:
            raise ValueError("unknown client %r (known: %s)" % (n, ", ".join(CLIENTS)))
    return names or list(CLIENTS)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "kai-standin"

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path == "/health":
            self.send_json(200, {"status": "ok"})
        elif parts.path == "/probe":
            urls = query.get("url") or self.server.urls
            try:
                clients = check_clients(query.get("client") or self.server.clients)
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return
            if not urls:
                self.send_json(400, {"error": "no url: pass ?url= or start with --url"})
                return
            doc = report(urls, clients, self.server.timeout_s)
            self.send_json(200 if doc["ok"] else 502, doc)
        else:
            self.send_json(404, {"error": "not found", "paths": ["/health", "/probe"]})

    def send_json(self, status, doc):
        body = dump(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("kai-standin: %s %s\n" % (self.address_string(), fmt % args))


def serve(args):
    httpd = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.urls = args.url or []
    httpd.clients = args.client
    httpd.timeout_s = args.timeout

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so it must not run
        # on the thread that is inside serve_forever().
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = httpd.server_address[:2]
    print("kai-standin: listening on http://%s:%d" % (host, port), flush=True)
    httpd.serve_forever()
    httpd.server_close()
    print("kai-standin: stopped", flush=True)
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="kai-standin.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("clients", "serve"):
        s = sub.add_parser(name)
        s.add_argument("--url", action="append", required=(name == "clients"),
                       help="URL to call (repeatable)")
        s.add_argument("--client", action="append", default=[], choices=CLIENTS,
                       help="client to use (repeatable; default: all)")
        s.add_argument("--timeout", type=float, default=15.0, help="seconds per call")
        if name == "serve":
            s.add_argument("--host", default="127.0.0.1")
            s.add_argument("--port", type=int, default=8080)
    sub.add_parser("versions")
    args = p.parse_args(argv)
    if args.mode == "versions":
        sys.stdout.write(json.dumps(versions(), indent=1, sort_keys=True) + "\n")
        return 0
    args.client = check_clients(args.client)
    if args.mode == "serve":
        return serve(args)
    doc = report(args.url, args.client, args.timeout)
    sys.stdout.write(dump(doc))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
