package entrypoint

import "strings"

// nearMisses returns the shim's variables that name is probably a typo of:
// those within nearMissDistance edits of it, case ignored, the nearest
// ones only. It returns nothing for the shim's own names, for names that do
// not start with KAI_ (in any case) and for KAI_ENV_* and KAI_SECRET_*,
// which are pass-through variables.
func nearMisses(name string) []string {
	if shimNames[name] || len(name) < 4 || !strings.EqualFold(name[:4], "KAI_") ||
		strings.HasPrefix(name, envPrefix) || strings.HasPrefix(name, secretPrefix) {
		return nil
	}
	rest := strings.ToUpper(name[4:]) // after KAI_, which every shim name has
	best := nearMissDistance
	var out []string
	for _, known := range shimVarNames {
		k := known[4:]
		if len(k)-len(rest) > best || len(rest)-len(k) > best { // at least that many edits
			continue
		}
		d := osaDistance(rest, k)
		if d > best {
			continue
		}
		if d < best {
			best, out = d, out[:0]
		}
		out = append(out, known)
	}
	return out
}

// osaDistance is the optimal string alignment distance between a and b:
// how many byte insertions, deletions, substitutions and swaps of adjacent
// bytes turn a into b, no byte being edited twice.
func osaDistance(a, b string) int {
	// Rows i-2, i-1 and i of the (len(a)+1) x (len(b)+1) table.
	n := len(b) + 1
	rows := make([]int, 3*n)
	prev2, prev, cur := rows[:n], rows[n:2*n], rows[2*n:]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
