//go:build !unix

package safefile

// openFlags: elsewhere there are no FIFOs to open by path.
const openFlags = 0
