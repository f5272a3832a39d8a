#!/usr/bin/python3
"""sdk-standin: Kai's client stack, called the way Kai calls it, for kai-entrypoint's end-to-end tests.

Like kai-standin.py (whose requests, httpx, aiohttp, urllib and curl calls it
reuses), it takes proxies and CA bundles ONLY from the environment: no client
is given a proxy, a CA file or verify=False. Run it with Debian 13's python3
and packages (python3-openai, -ollama, -boto3, -grpcio, -google-auth,
-httplib2, -pip; git).

Usage
-----
  sdk-standin.py --run RUN [--base URL ...] [--ollama URL ...] [--grpc HOST:PORT ...]
                 [--client NAME ...] [--timeout SECONDS]

Every HTTP client calls every --base URL under the prefix URL/r/RUN/CLIENT/
(the upstream records each request by that prefix); the ollama client also
calls every --ollama URL (plain HTTP) the same way; the grpc client makes a
unary call to every --grpc target, with RUN in its x-kai-run metadata.

Clients (NAME): requests httpx aiohttp urllib curl (GET v1/models, as
kai-standin.py), openai (OpenAI().chat.completions.create), openai-async
(AsyncOpenAI), ollama (ollama.AsyncClient(host=...).chat), boto3
(bedrock-runtime converse with endpoint_url), google-auth (its requests
transport, AuthorizedSession), httplib2, git (ls-remote, then clone, over
dumb HTTP), pip (pip download from a simple index), grpc (grpcio, TLS).

Output: one JSON document on stdout,
  {"standin": "sdk-standin", "ok": bool, "versions": {NAME: version, ...},
   "results": [{"client": NAME, "url": URL, "ok": bool,
                "reply": str|null (the assistant's text, for openai, ollama, boto3),
                "error_class": str|null,
                "error": str|null (the exception and its causes, or the
                command's output)}]}
exit 0 if every call succeeded, 1 otherwise.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("kai_standin", os.path.join(HERE, "kai-standin.py"))
kai_standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kai_standin)

MESSAGES = [{"role": "user", "content": "ping"}]
GRPC_METHOD = "/kai.e2e.Echo/Ping"


class CallError(Exception):
    """A call returned an answer that is not the expected one, or a command failed."""


def call_basic(client, prefix, timeout):
    r = kai_standin.run_one(client, prefix + "/v1/models", timeout)
    if not r["ok"]:
        raise CallError("%s: %s" % (r["error_class"], r["error"]) if r["error"] else "HTTP %s" % r["status"])


def call_openai(prefix, timeout):
    import openai
    c = openai.OpenAI(base_url=prefix + "/v1", api_key="kai-e2e", max_retries=0, timeout=timeout)
    return c.chat.completions.create(model="fake-gpt", messages=MESSAGES).choices[0].message.content


def call_openai_async(prefix, timeout):
    import openai

    async def run():
        c = openai.AsyncOpenAI(base_url=prefix + "/v1", api_key="kai-e2e", max_retries=0, timeout=timeout)
        r = await c.chat.completions.create(model="fake-gpt", messages=MESSAGES)
        return r.choices[0].message.content

    return asyncio.run(run())


def call_ollama(prefix, timeout):
    import ollama

    async def run():
        r = await ollama.AsyncClient(host=prefix, timeout=timeout).chat(model="kai-local", messages=MESSAGES)
        return r.message.content

    return asyncio.run(run())


def call_boto3(prefix, timeout):
    import boto3
    from botocore.config import Config
    c = boto3.client("bedrock-runtime", endpoint_url=prefix, region_name="us-east-1",
                     aws_access_key_id="kai-e2e", aws_secret_access_key="kai-e2e",
                     config=Config(retries={"total_max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout))
    r = c.converse(modelId="kai-model", messages=[{"role": "user", "content": [{"text": "ping"}]}])
    return r["output"]["message"]["content"][0]["text"]


def call_google_auth(prefix, timeout):
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    r = AuthorizedSession(AnonymousCredentials()).get(prefix + "/v1/models", timeout=timeout)
    if r.status_code != 200:
        raise CallError("HTTP %d" % r.status_code)


def call_httplib2(prefix, timeout):
    import httplib2
    resp, _ = httplib2.Http(timeout=timeout).request(prefix + "/v1/models")
    if resp.status != 200:
        raise CallError("HTTP %d" % resp.status)


def run_command(argv, timeout):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, text=True)
    if p.returncode != 0:
        raise CallError("%s exit %d: %s" % (argv[0], p.returncode, (p.stdout + p.stderr).strip()))


def call_git(prefix, timeout):
    url = prefix + "/git/repo.git"
    run_command(["git", "ls-remote", url], timeout)
    with tempfile.TemporaryDirectory() as d:
        run_command(["git", "clone", "-q", url, os.path.join(d, "repo")], timeout)


def call_pip(prefix, timeout):
    with tempfile.TemporaryDirectory() as d:
        run_command([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                     "--disable-pip-version-check", "--retries", "0", "--timeout", str(timeout),
                     "--index-url", prefix + "/simple/", "--dest", d, "kai-probe"], timeout * 2)
        if not os.listdir(d):
            raise CallError("pip download wrote nothing")


def call_grpc(target, run, timeout):
    import grpc
    with grpc.secure_channel(target, grpc.ssl_channel_credentials()) as ch:
        reply = ch.unary_unary(GRPC_METHOD)(b"ping", timeout=timeout, metadata=[("x-kai-run", run)])
    if reply != b"ping":
        raise CallError("gRPC echo %r" % reply)


HTTP_CLIENTS = {
    "openai": call_openai, "openai-async": call_openai_async, "ollama": call_ollama,
    "boto3": call_boto3, "google-auth": call_google_auth, "httplib2": call_httplib2,
    "git": call_git, "pip": call_pip,
}
BASIC = ("requests", "httpx", "aiohttp", "urllib", "curl")
CLIENTS = BASIC + tuple(HTTP_CLIENTS) + ("grpc",)


def describe(exc):
    """The exception and every cause or context under it: the SDKs wrap the
    TLS error (openai's APIConnectionError says only "Connection error.")."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cls = type(exc)
        parts.append("%s.%s: %s" % (cls.__module__, cls.__qualname__, exc))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def one(client, url, call):
    result = {"client": client, "url": url, "ok": False, "reply": None, "error_class": None, "error": None}
    try:
        result["reply"] = call()
        result["ok"] = True
    except Exception as exc:  # report every failure, whatever its type
        result["error_class"] = type(exc).__module__ + "." + type(exc).__qualname__
        result["error"] = describe(exc)
    return result


def versions():
    from importlib.metadata import version, PackageNotFoundError
    v = dict(kai_standin.versions())
    for name, dist in (("openai", "openai"), ("openai-async", "openai"), ("ollama", "ollama"),
                       ("boto3", "boto3"), ("botocore", "botocore"), ("google-auth", "google-auth"),
                       ("httplib2", "httplib2"), ("pip", "pip"), ("grpc", "grpcio")):
        try:
            v[name] = version(dist)
        except PackageNotFoundError:
            v[name] = None
    try:
        v["git"] = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[2]
    except (OSError, IndexError):
        v["git"] = None
    return v


def main(argv):
    p = argparse.ArgumentParser(prog="sdk-standin.py", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--base", action="append", default=[])
    p.add_argument("--ollama", action="append", default=[])
    p.add_argument("--grpc", action="append", default=[])
    p.add_argument("--client", action="append", default=[], choices=CLIENTS)
    p.add_argument("--timeout", type=float, default=20.0)
    a = p.parse_args(argv)
    clients = a.client or list(CLIENTS)
    results = []
    for base in a.base:
        for c in clients:
            prefix = "%s/r/%s/%s" % (base, a.run, c)
            if c in BASIC:
                results.append(one(c, base, lambda: call_basic(c, prefix, a.timeout)))
            elif c in HTTP_CLIENTS:
                results.append(one(c, base, lambda: HTTP_CLIENTS[c](prefix, a.timeout)))
    if "ollama" in clients:
        for base in a.ollama:
            prefix = "%s/r/%s/ollama" % (base, a.run)
            results.append(one("ollama", base, lambda: call_ollama(prefix, a.timeout)))
    if "grpc" in clients:
        for target in a.grpc:
            results.append(one("grpc", target, lambda: call_grpc(target, a.run, a.timeout)))
    doc = {"standin": "sdk-standin", "ok": bool(results) and all(r["ok"] for r in results),
           "versions": versions(), "results": results}
    print(json.dumps(doc, indent=1, sort_keys=True))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
