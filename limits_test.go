package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestValuesTheKernelCannotPass: a value execve would refuse or cut short
// is a configuration error (78) naming the variable, in --check and before
// the exec of a real run, instead of a misleading 126 after "valid".
func TestValuesTheKernelCannotPass(t *testing.T) {
	tests := []struct {
		name    string
		secrets map[string][]byte // KAI_SECRET_<name> -> file contents
		want    string
	}{
		{
			name:    "NUL byte in a secret file",
			secrets: map[string][]byte{"API_KEY": []byte("abc\x00def")},
			want:    `API_KEY (from KAI_SECRET_API_KEY="DIR/API_KEY"): the value holds a NUL byte`,
		},
		{
			name:    "one variable over the per-string limit",
			secrets: map[string][]byte{"BIG": bytes.Repeat([]byte("a"), 200<<10)},
			want:    `BIG (from KAI_SECRET_BIG="DIR/BIG"): 204804 bytes as NAME=value, over the kernel's limit of 131071 bytes for one environment string`,
		},
		{
			// 55 x 120 KiB is over the 6 MiB the kernel allows whatever the
			// stack limit.
			name: "the whole environment over the exec limit",
			secrets: func() map[string][]byte {
				m := map[string][]byte{}
				for i := range 55 {
					m[fmt.Sprintf("PART%02d", i)] = bytes.Repeat([]byte("b"), 120<<10)
				}
				return m
			}(),
			want: "over the",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			env := append(baseEnv(dir), "KAI_CERT_DIRS=")
			for name, data := range tt.secrets {
				if err := os.WriteFile(dir+"/"+name, data, 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "KAI_SECRET_"+name+"="+dir+"/"+name)
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			for _, args := range [][]string{{"--check", "/bin/true"}, {"/bin/true"}} {
				r := runShim(t, env, args...)
				if r.code != 78 || !strings.Contains(r.stderr, want) {
					t.Errorf("%q: exit %d, want 78 and %q in:\n%s", args, r.code, want, r.stderr)
				}
				if strings.Contains(r.stdout, "valid") {
					t.Errorf("%q: reported valid:\n%s", args, r.stdout)
				}
			}
		})
	}
}
