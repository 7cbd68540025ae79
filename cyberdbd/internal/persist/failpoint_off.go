//go:build !failpoints

package persist

func envFailpoint(string) {}
