// Package systemd is cyberdbd's side of systemd's protocols, each as
// go-systemd implements it: the sockets a .socket unit passes (socket
// activation, Listeners), what the daemon tells the service manager
// (sd_notify: READY=1, STATUS=, RELOADING=1, STOPPING=1, and watchdog
// pings that a health check must earn: Notifier), and log lines the
// journal files under their syslog priority (NewLogHandler). Outside
// systemd each does nothing: no sockets are passed, nothing is sent, and
// log lines are plain text with a time.
package systemd
