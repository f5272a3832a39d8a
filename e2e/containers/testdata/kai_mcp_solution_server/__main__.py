"""Runs kai-standin.py's `serve` mode with the real server's --host and --port.

The stand-in runs in this process (runpy), so the container's only process is the
one started as `python3.12 -m kai_mcp_solution_server ...`, as with the real server.
"""

import argparse
import runpy
import sys

STANDIN = "/opt/kai-standin/kai-standin.py"

p = argparse.ArgumentParser(prog="python3.12 -m kai_mcp_solution_server")
p.add_argument("--transport", default="streamable-http")
p.add_argument("--host", default="0.0.0.0")
p.add_argument("--port", default="8000")
p.add_argument("--mount-path", default="/")
p.add_argument("--log-level", default="info")
args = p.parse_args()

sys.argv = [STANDIN, "serve", "--host", args.host, "--port", str(args.port)]
runpy.run_path(STANDIN, run_name="__main__")
