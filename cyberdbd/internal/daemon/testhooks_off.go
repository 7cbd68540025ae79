//go:build !cyberdbtest

package daemon

// installTestHooks does nothing in a release build: the test hooks
// (testhooks.go) exist only with the cyberdbtest build tag.
func (d *Daemon) installTestHooks() {}
