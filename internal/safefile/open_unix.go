//go:build unix

package safefile

import "syscall"

// openFlags makes the open of a FIFO return at once instead of waiting
// for a writer.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
