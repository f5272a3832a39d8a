// Package entrypoint is kai-entrypoint's policy for the Kai server: the
// variables it reads (settings.go, vars.go); how proxies, the no-proxy
// list, pass-through variables and secrets become the command's
// environment; which CA sources feed the bundle that package trust builds;
// the wait for sidecars; and what --check reports. A Plan is made in steps
// (main.go takes them in order) without touching the process; the caller
// execs it (Exec).
package entrypoint
