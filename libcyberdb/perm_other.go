//go:build !unix

package libcyberdb

import "os"

func socketMayBeAt(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func permissionHint(dialer, error) string { return "" }
