package main

import (
	"regexp"
	"strconv"
	"strings"
)

// The daemon's messages give the way out in the protocol's terms ("create
// it with create_dict or create_list", "dget needs a dict"); here they
// name cyberdb's commands. PROTOCOL.md asks clients not to parse messages,
// and the daemon's wording is its own: so only those exact phrases are
// rewritten, and a message worded otherwise is shown as it is (the
// libcyberdb typed API does the same in Go terms; the CLI uses its raw
// API, which keeps the daemon's text).

var (
	noTableHint   = regexp.MustCompile(`no table named ("(?:[^"\\]|\\.)*"): create it with create_dict or create_list`)
	wrongKindHint = regexp.MustCompile(`; [a-z_]+ needs a (dict|list)$`)
)

// cliMessage is err's message for the person who ran command cmd.
func cliMessage(cmd string, err error) string {
	msg := message(err)
	if m := noTableHint.FindStringSubmatchIndex(msg); m != nil {
		name, uerr := strconv.Unquote(msg[m[2]:m[3]])
		if uerr != nil {
			name = "NAME"
		}
		msg = msg[:m[0]] + "no table named " + msg[m[2]:m[3]] + ": create it with 'cyberdb create dict " + shellQuote(name) +
			"' or 'cyberdb create list " + shellQuote(name) + "'" + msg[m[1]:]
	}
	if cmd != "batch" { // a batch names ops as its user wrote them
		if m := wrongKindHint.FindStringSubmatchIndex(msg); m != nil {
			kind := msg[m[2]:m[3]]
			msg = msg[:m[0]] + "; cyberdb " + cmd + " works on a " + kind + " (cyberdb --help lists the commands for each kind)"
		}
	}
	return strings.Replace(msg, "read the table in pages (dscan, lrange)", "read the table in pages (cyberdb keys, items, values and dump do)", 1)
}

// shellQuote quotes s for a shell command line, only when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
