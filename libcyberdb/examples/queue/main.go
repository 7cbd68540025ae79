// Command queue is the reliable-queue pattern with libcyberdb.Queue: a
// producer puts jobs on a queue, worker processes take them into their own
// in-progress lists, do them, and acknowledge them; the jobs of a worker
// that dies (kill -9) go back to the queue when its lease runs out.
//
//	queue -n 100 produce          # put job-000001 ... job-000100
//	queue -lease 2s work &        # as many worker processes as you like
//	queue -lease 2s work &
//	queue status                  # waiting, in progress, done
//
// (Flags come before the command.)
//
// A worker "does" a job by sleeping -work, then appends "JOB WORKER" to the
// list table "<queue>.done" and acknowledges the job. Every few seconds
// each worker also runs Queue.Recover. SIGTERM or SIGINT stops a worker
// cleanly: the job it holds goes back to the queue. The repository's
// README.md, "Work queues", says what the pattern guarantees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("queue[%d]: ", os.Getpid()))
	fs := flag.NewFlagSet("queue", flag.ExitOnError)
	socket := fs.String("socket", "", "cyberdbd's socket (default: $CYBERDB_ADDR, else the daemon's default)")
	name := fs.String("queue", "jobs", "the queue's table")
	n := fs.Int("n", 100, "produce: how many jobs")
	lease := fs.Duration("lease", 2*time.Second, "work: the worker's lease (its jobs are requeued this long after it dies)")
	work := fs.Duration("work", 20*time.Millisecond, "work: how long a job takes")
	id := fs.String("id", "", "work: the worker's id (default: w<pid>)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: queue [flags] produce|work|recover|status\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := libcyberdb.Open(ctx, *socket)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	q := libcyberdb.NewQueue[string](c, *name)
	if err := q.Create(ctx); err != nil {
		log.Fatal(err)
	}
	done := libcyberdb.NewList[string](c, *name+".done")
	if err := c.CreateList(ctx, done.Name(), nil, libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	switch fs.Arg(0) {
	case "produce":
		jobs := make([]string, *n)
		for i := range jobs {
			jobs[i] = fmt.Sprintf("job-%06d", i+1)
		}
		err = q.Put(ctx, jobs...)
	case "work":
		wid := *id
		if wid == "" {
			wid = fmt.Sprintf("w%d", os.Getpid())
		}
		err = runWorker(ctx, q, done, wid, *lease, *work)
	case "recover":
		var k int
		k, err = q.Recover(ctx)
		fmt.Printf("requeued %d jobs\n", k)
	case "status":
		err = status(ctx, c, q, done)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func runWorker(ctx context.Context, q *libcyberdb.Queue[string], done *libcyberdb.List[string], id string, lease, work time.Duration) error {
	w, err := q.Worker(ctx, id, lease)
	if err != nil {
		return err
	}
	log.Printf("worker %s ready", w.ID())
	lastRecover := time.Time{}
	for {
		if time.Since(lastRecover) > lease/2 {
			if k, err := q.Recover(ctx); err != nil && ctx.Err() == nil {
				return err
			} else if k > 0 {
				log.Printf("requeued %d jobs of dead workers", k)
			}
			lastRecover = time.Now()
		}
		job, ok, err := w.Take(ctx, lease/2)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		time.Sleep(work) // the job
		if _, err := done.Append(ctx, job+" "+id); err != nil {
			return err
		}
		if err := w.Ack(ctx, job); errors.Is(err, libcyberdb.ErrLeaseLost) {
			log.Printf("%s: %v", job, err)
		} else if err != nil {
			return err
		}
	}
	// Stopped (SIGTERM, SIGINT): give back what we hold.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Printf("worker %s stopping", id)
	return w.Stop(sctx)
}

func status(ctx context.Context, c *libcyberdb.Client, q *libcyberdb.Queue[string], done *libcyberdb.List[string]) error {
	waiting, err := q.Jobs().Len(ctx)
	if err != nil {
		return err
	}
	tables, err := c.Tables(ctx)
	if err != nil {
		return err
	}
	inprog := 0
	for _, t := range tables {
		if strings.HasPrefix(t.Name, q.Jobs().Name()+".inprogress.") {
			inprog += t.Len
		}
	}
	n, err := done.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("waiting %d, in progress %d, done %d\n", waiting, inprog, n)
	return nil
}
