package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConfigFile: whatever a --config file holds, parsing the flags gives
// a config or an error, never a panic; and a config file never overrides a
// flag given on the command line.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("# settings\nmax-conns = 500\nlog-level = \"debug\"\n"))
	f.Add([]byte("allow-uid = 0\nallow-uid = 1\nidle-timeout = 5m\nmax-frame = 1MiB\n"))
	f.Add([]byte("fsync = always\nsnapshot-interval = 0\nappendonly = false\n"))
	f.Add([]byte("socket-mode = 0600\n--max-conns=7\n\"quoted\" = \"x\"\n"))
	f.Add([]byte("= \nnope\nconfig = /etc/x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "cyberdbd.conf")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := parseFlags([]string{"--config", path, "--max-conns", "123"}, io.Discard)
		if err == nil && cfg.maxConns != 123 {
			t.Fatalf("the config file overrode --max-conns on the command line: %d", cfg.maxConns)
		}
	})
}
