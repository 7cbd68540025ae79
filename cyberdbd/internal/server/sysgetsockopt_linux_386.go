package server

// sysGetsockopt is 0 on 386, which reaches getsockopt only through
// socketcall: supplementary groups are then not checked.
const sysGetsockopt = 0
