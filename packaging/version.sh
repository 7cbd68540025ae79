#!/bin/sh
# Prints the version of this tree for the binaries and the packages, from
# `git describe --tags --always --dirty`, in a form that dpkg and rpm both
# order correctly:
#
#   tag v1.2.3                      -> 1.2.3
#   tag v1.2.3-rc1                  -> 1.2.3~rc1         (before 1.2.3)
#   4 commits after v1.2.3          -> 1.2.3+4.gabc1234  (after 1.2.3)
#   uncommitted changes             -> ...+dirty / ....dirty
#   no tag yet                      -> 0.0.0~dev+gabc1234
#   no git, or no commit yet        -> 0.0.0~dev
set -eu
cd "$(dirname "$0")/.."
d=$(git describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null) || d=
dirty=
case $d in *-dirty) dirty=dirty; d=${d%-dirty} ;; esac
case $d in
"")
	v=0.0.0~dev
	[ -z "$dirty" ] || v="$v+dirty"
	;;
v[0-9]*)
	# v1.2.3[-pre]-N-gHASH: the tag, then what git added after it.
	v=$(printf '%s\n' "${d#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/; s/-/~/g')
	if [ -n "$dirty" ]; then
		case $v in *+*) v="$v.dirty" ;; *) v="$v+dirty" ;; esac
	fi
	;;
*)
	# No tag: git printed the abbreviated commit hash.
	v="0.0.0~dev+g$d"
	[ -z "$dirty" ] || v="$v.dirty"
	;;
esac
printf '%s\n' "$v"
