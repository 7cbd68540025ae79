module github.com/cyberdb/cyberdb/libcyberdb/examples/webapp-redis

go 1.26.0

require github.com/redis/go-redis/v9 v9.23.0

require (
	github.com/fxamacker/cbor/v2 v2.10.0 // indirect
	github.com/redis/rueidis v1.0.79
	github.com/x448/float16 v0.8.4 // indirect
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/cyberdb/cyberdb v0.0.0
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace github.com/cyberdb/cyberdb => ../../..
