package trust

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSameContent compares a file with parts split at places that do and
// do not line up with its 32 KiB reads.
func TestSameContent(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes: three reads
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	changed := append([]byte(nil), data...)
	changed[70000] = 'X'
	tests := []struct {
		name  string
		parts [][]byte
		want  bool
	}{
		{name: "one part", parts: [][]byte{data}, want: true},
		{name: "split inside a read", parts: [][]byte{data[:100], data[100:]}, want: true},
		{name: "split at a read boundary", parts: [][]byte{data[:32<<10], nil, data[32<<10:]}, want: true},
		{name: "many parts", parts: [][]byte{data[:1], data[1:40000], {}, data[40000:79999], data[79999:]}, want: true},
		{name: "shorter parts", parts: [][]byte{data[:100], data[100 : len(data)-1]}, want: false},
		{name: "longer parts", parts: [][]byte{data, []byte("x")}, want: false},
		{name: "a byte differs in the last read", parts: [][]byte{changed[:50000], changed[50000:]}, want: false},
		{name: "nothing", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]int, len(tt.parts))
			for i, p := range tt.parts {
				before[i] = len(p)
			}
			if got := sameContent(root, "f", tt.parts); got != tt.want {
				t.Errorf("sameContent = %v, want %v", got, tt.want)
			}
			for i, p := range tt.parts {
				if len(p) != before[i] {
					t.Errorf("part %d changed length: %d, was %d", i, len(p), before[i])
				}
			}
		})
	}
}
