package entrypoint

import (
	"strings"
	"testing"
)

func TestCheckExec(t *testing.T) {
	secret := Passthrough{Var: "KAI_SECRET_TOKEN", Name: "TOKEN", Secret: true, Path: "/run/secrets/token"}
	tests := []struct {
		name  string
		plan  Plan
		limit int
		want  []string // one substring per error
	}{
		{name: "fits", plan: Plan{Path: "/bin/true", Argv: []string{"true"}, Env: []string{"A=1"}}, limit: 100},
		{
			// 10+1 (path) + 5+1 (argv) + 4+1 (env) + 2 pointers of 8 bytes = 38
			name:  "exactly at the limit",
			plan:  Plan{Path: "/bin/true1", Argv: []string{"true1"}, Env: []string{"A=12"}},
			limit: 38,
		},
		{
			name:  "one byte over the limit",
			plan:  Plan{Path: "/bin/true1", Argv: []string{"true1"}, Env: []string{"A=123"}},
			limit: 38,
			want:  []string{"take 39 bytes, over the 38 bytes the kernel allows", "the largest variables: A (5 bytes)"},
		},
		{
			name:  "NUL named by its secret file, never by value",
			plan:  Plan{Env: []string{"TOKEN=Qz\x00Qz"}, Passthrough: []Passthrough{secret}},
			limit: 1 << 20,
			want:  []string{`TOKEN (from KAI_SECRET_TOKEN="/run/secrets/token"): the value holds a NUL byte`},
		},
		{
			name:  "one string over MAX_ARG_STRLEN",
			plan:  Plan{Env: []string{"X=" + strings.Repeat("x", maxArgStrlen-2)}},
			limit: 1 << 30,
			want:  []string{"X: 131072 bytes as NAME=value, over the kernel's limit of 131071"},
		},
		{
			name:  "one string at MAX_ARG_STRLEN with its NUL",
			plan:  Plan{Env: []string{"X=" + strings.Repeat("x", maxArgStrlen-3)}},
			limit: 1 << 30,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msgs []string
			for _, err := range tt.plan.checkExec(tt.limit) {
				msgs = append(msgs, err.Error())
			}
			got := strings.Join(msgs, "\n")
			if (got == "") != (len(tt.want) == 0) {
				t.Fatalf("errors %q, want %q", got, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors %q, want one containing %q", got, w)
				}
			}
			if strings.Contains(got, "Qz") {
				t.Errorf("an error shows the value: %q", got)
			}
		})
	}
}

func TestExecLimit(t *testing.T) {
	if got := execLimit(); got < argMax || got > stackLimCap {
		t.Errorf("execLimit() = %d, want between %d and %d", got, argMax, stackLimCap)
	}
}
