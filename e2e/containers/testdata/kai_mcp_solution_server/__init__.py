"""Stand-in for the Kai solution server package, for the container tests.

The test image installs this package so that the kai-entrypoint image's default
command, `python3.12 -m kai_mcp_solution_server --transport ... --host ... --port ...`
(the command of quay.io/konveyor/kai-solution-server), works unchanged and starts
e2e/testdata/kai-standin.py in server mode instead of the real server.
"""
