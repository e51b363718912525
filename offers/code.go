package offers

// CodeKey is how codes compare (SPEC §10: case-insensitively): ASCII letters A–Z fold to
// a–z, every other byte compares as is. It is the Go side of the database's
// lower(code COLLATE "C"), the key of the unique index on codes (migration 0024), so a
// comparison made in Go agrees with the index.
func CodeKey(code string) string {
	for i := 0; i < len(code); i++ {
		if c := code[i]; 'A' <= c && c <= 'Z' {
			b := []byte(code)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return code
}
