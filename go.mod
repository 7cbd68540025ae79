module github.com/cyberdb/cyberdb

go 1.24.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/fxamacker/cbor/v2 v2.10.0
	github.com/spf13/pflag v1.1.0
	github.com/x448/float16 v0.8.4
	golang.org/x/sys v0.41.0
	golang.org/x/term v0.40.0
)
