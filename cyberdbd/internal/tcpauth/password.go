package tcpauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cyberdb/cyberdb/internal/safefile"
)

// CredentialPassword is the name of the systemd credential holding the
// password (LoadCredential=password:/etc/cyberdb/password), read from
// $CREDENTIALS_DIRECTORY when --password-file is not given.
const CredentialPassword = "password"

// maxPasswordFile bounds what is read from a password file.
const maxPasswordFile = 4096

// LoadPassword reads the password from file (--password-file), else, when
// file is "", from the systemd credential. It says where it came from,
// for the log.
func LoadPassword(file string) (pw []byte, source string, err error) {
	if file != "" {
		pw, err := readPasswordFile(file, true)
		return pw, file, err
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		path := filepath.Join(dir, CredentialPassword)
		if _, err := os.Stat(path); err == nil {
			// systemd made the file, readable by this service only.
			pw, err := readPasswordFile(path, false)
			return pw, "systemd credential " + CredentialPassword, err
		}
	}
	return nil, "", errors.New("the TCP listener needs a password: give --password-file FILE (mode 0600), " +
		"or under systemd the credential \"password\" (LoadCredential=password:/etc/cyberdb/password)")
}

// readPasswordFile reads a password file. With private it refuses a file
// that group or others may read or write, as ssh does with keys. The
// password is the file's content without one final newline; it may not be
// empty. A FIFO, a device or a file that cannot be read within a few
// seconds is refused rather than waited for (safefile).
func readPasswordFile(path string, private bool) ([]byte, error) {
	o := safefile.Options{What: "password file", MaxSize: maxPasswordFile}
	if private {
		o.Forbidden = 0o077
	}
	b, err := safefile.Read(path, o)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("password file %s is empty; put a password in it, e.g.: head -c 32 /dev/urandom | base64 > %s", path, path)
	}
	return b, nil
}
