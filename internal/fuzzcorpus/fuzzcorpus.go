// Package fuzzcorpus reads and writes the seed corpora of fuzz targets
// (testdata/fuzz/<Target>/<name>, "go test fuzz v1" files of []byte
// arguments), so that tests can use the same real exports as seeds and as
// table cases.
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const header = "go test fuzz v1"

// Read returns the seeds in dir (testdata/fuzz/<Target>) by file name, each
// as its []byte arguments; it fails the test when there are none.
func Read(t testing.TB, dir string) map[string][][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus in %s: %v", dir, err)
	}
	seeds := map[string][][]byte{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if lines[0] != header {
			t.Fatalf("%s: not a fuzz corpus file", file)
		}
		var args [][]byte
		for _, l := range lines[1:] {
			q, ok := strings.CutPrefix(l, "[]byte(")
			q, ok2 := strings.CutSuffix(q, ")")
			s, err := strconv.Unquote(q)
			if !ok || !ok2 || err != nil {
				t.Fatalf("%s: cannot read %q: want []byte arguments", file, l)
			}
			args = append(args, []byte(s))
		}
		seeds[filepath.Base(file)] = args
	}
	return seeds
}

// Write writes one seed of []byte arguments to dir/name.
func Write(t testing.TB, dir, name string, args ...[]byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, a := range args {
		fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(a)))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
