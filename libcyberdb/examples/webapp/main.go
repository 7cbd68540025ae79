// Command webapp is CyberDB's Flask + gunicorn tutorial in Go: a web
// server run as several worker processes behind one listening port, each
// with its own libcyberdb Client, all reading the same table from cyberdbd.
//
//	webapp init                         # create the table "centre"
//	webapp serve -workers 4 -addr :8080 # GET / -> {"code":1,"content":"Hello CyberDB!"}
//
// See README.md next to this file.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("webapp[%d]: ", os.Getpid()))
	fs := flag.NewFlagSet("webapp", flag.ExitOnError)
	socket := fs.String("socket", "", "cyberdbd's socket (default: $CYBERDB_ADDR, else the daemon's default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage:\n  webapp [-socket PATH] init\n  webapp [-socket PATH] serve [-workers N] [-addr :8080]\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	args := fs.Args()[1:]
	var err error
	switch fs.Arg(0) {
	case "init":
		err = initTables(*socket)
	case "serve":
		err = serve(*socket, args)
	case "worker": // started by serve, with the listener as fd 3
		err = worker(*socket)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// initTables is the tutorial's init step: the table and its content.
func initTables(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := libcyberdb.Open(ctx, socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateDict(ctx, "centre", nil, libcyberdb.IfNotExists()); err != nil {
		return err
	}
	return libcyberdb.NewDict[string, string](c, "centre").Set(ctx, "content", "Hello CyberDB!")
}

// serve listens once and starts the workers, which all accept on the same
// socket (passed as an inherited file descriptor, the way gunicorn's
// master shares its socket). It prints "listening on ADDR" when ready,
// forwards SIGINT/SIGTERM to the workers, and exits when they have.
func serve(socket string, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	workers := fs.Int("workers", 4, "worker processes")
	addr := fs.String("addr", ":8080", "TCP address to listen on")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	ln.Close() // the workers hold the socket now

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var cmds []*exec.Cmd
	for i := 0; i < *workers; i++ {
		cmd := exec.Command(os.Args[0], "-socket", socket, "worker")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{f} // fd 3 in the worker
		cmd.Env = append(os.Environ(), "WEBAPP_WORKER="+strconv.Itoa(i))
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	f.Close()
	fmt.Printf("listening on %s with %d workers\n", ln.Addr(), len(cmds))

	exited := make(chan error, len(cmds))
	var wg sync.WaitGroup
	for _, cmd := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); exited <- cmd.Wait() }()
	}
	var firstErr error
	select {
	case sig := <-sigs:
		log.Printf("%v: stopping the workers", sig)
	case err := <-exited:
		firstErr = fmt.Errorf("a worker exited: %v", err)
	}
	for _, cmd := range cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	wg.Wait()
	return firstErr
}

// worker serves HTTP on the inherited listener with its own Client.
func worker(socket string) error {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("worker needs the listener as fd 3 (start it with 'webapp serve'): %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := libcyberdb.Open(ctx, socket) // one Client per process, shared by every request
	if err != nil {
		return err
	}
	defer c.Close()
	centre := libcyberdb.NewDict[string, string](c, "centre")
	pid := strconv.Itoa(os.Getpid())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		content, err := centre.Get(r.Context(), "content")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Worker-Pid", pid)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"code": 0, "error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(struct {
			Code    int    `json:"code"`
			Content string `json:"content"`
		}{1, content})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
