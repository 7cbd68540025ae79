package cyberdbtest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbtest"
)

// A test's daemon, with its expiry clock moved forward. In a test,
// cyberdbtest.New(t) does the same in one line and closes it at the end.
func Example() {
	db, err := cyberdbtest.Start()
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()

	db.Client.CreateDict(ctx, "sessions", nil)
	sessions := libcyberdb.NewDict[string, string](db.Client, "sessions")
	sessions.Set(ctx, "alice", "f3a9", libcyberdb.TTL(30*time.Minute))

	v, err := sessions.Get(ctx, "alice")
	fmt.Println(v, err)

	db.FastForward(time.Hour)
	_, err = sessions.Get(ctx, "alice")
	fmt.Println(errors.Is(err, libcyberdb.ErrNotFound))
	// Output:
	// f3a9 <nil>
	// true
}
