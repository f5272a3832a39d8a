// Package entrypoint is kai-entrypoint's policy for the Kai server: the
// variables it reads (settings.go, vars.go); how proxies, the no-proxy
// list, pass-through variables and secrets become the command's
// environment; how the extra CAs and the system roots become one CA bundle;
// the wait for sidecars; and what --check reports. Run plans all of it
// without touching the process; the caller execs the plan (Exec).
package entrypoint
