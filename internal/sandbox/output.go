package sandbox

import (
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A sandbox's stdout and stderr must outlive the process that started it:
// a pipe to that process would die with it, and the command would get
// SIGPIPE, or block, at its next write. So the sandbox init relays the
// command's output into two FIFOs in the sandbox's run dir (dynoinit.go),
// and the Manager that has the sandbox (Start or Adopt) reads them:
//
//	command ─pipe─► init ─► <run>/<id>/stdout (FIFO) ─► copier ─► Spec.Stdout
//	                    └─► <run>/<id>/stderr (FIFO) ─► copier ─► Spec.Stderr
//
// While a Manager reads, output is lossless and a command that writes
// faster than it is read waits, as with a pipe. While none reads (the
// process restarts, or the sandbox is detached) the FIFO keeps the last
// outputPipeBytes of each stream for the next reader and the init drops
// the rest in PIPE_BUF chunks (a line cut by a drop loses its rest; the
// next reader may see the tail of a line whose head the last one read).
// The command is never blocked and never gets SIGPIPE for want of a
// reader.

// outputPipeBytes is each output FIFO's capacity: what is kept while no
// Manager reads. The pages are allocated only as output waits in them.
const outputPipeBytes = 256 << 10

// output copies a sandbox's two FIFOs to its writers.
type output struct {
	files []*os.File // our read ends: stdout, stderr
	wg    sync.WaitGroup
}

// makeOutput creates the sandbox's FIFOs and exit status file, opens our
// read ends and returns the init's files: fds 3 (stdout), 4 (stderr) and
// 5 (exit status) in the sandbox. The caller closes those after the start.
func makeOutput(l layout) (*output, []*os.File, error) {
	for _, p := range []string{l.stdout(), l.stderr()} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return nil, nil, &os.PathError{Op: "mkfifo", Path: p, Err: err}
		}
	}
	o, err := openOutput(l)
	if err != nil {
		return nil, nil, err
	}
	var files []*os.File
	fail := func(err error) (*output, []*os.File, error) {
		closeAll(files)
		o.close()
		return nil, nil, err
	}
	for _, p := range []string{l.stdout(), l.stderr()} {
		// Non-blocking: with our read end open, this never waits.
		f, err := os.OpenFile(p, os.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
	}
	f, err := os.OpenFile(l.exit(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fail(err)
	}
	files = append(files, f)
	for _, r := range o.files {
		if err := setPipeSize(r, outputPipeBytes); err != nil {
			return fail(err)
		}
	}
	return o, files, nil
}

// openOutput opens the read ends of the sandbox's FIFOs. They do not
// block: a read sees EOF once no writer (the init) is left.
func openOutput(l layout) (*output, error) {
	o := &output{}
	for _, p := range []string{l.stdout(), l.stderr()} {
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			o.close()
			return nil, err
		}
		o.files = append(o.files, f)
	}
	return o, nil
}

func setPipeSize(f *os.File, n int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { _, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n) }); err != nil {
		return err
	}
	return os.NewSyscallError("F_SETPIPE_SZ", serr)
}

// start copies stdout and stderr (nil: discard) until EOF or close.
func (o *output) start(stdout, stderr io.Writer) {
	for i, w := range []io.Writer{stdout, stderr} {
		f := o.files[i]
		o.wg.Go(func() { copyOutput(w, f) })
	}
}

// dropPause is how long a copier waits before its next read while its
// writer drops lines (a dyno's log writer over its rate limit,
// logs.WriterRate). Meanwhile the FIFO fills and the command waits on
// its own pipe, so a dyno that floods its output spends its own CPU
// time, at its own priority, rather than the host's: read as fast as it
// came, a flood of 2 million short lines a second cost the host a
// wake-up per PIPE_BUF chunk, a tenth of a core at normal priority, for
// lines it then dropped. Each read after a pause takes up to the FIFO's
// capacity, so a flood still moves at 12.8 MB/s, and a write of a
// megabyte waits a tenth of a second (reliability.md I-9: under one).
const dropPause = 20 * time.Millisecond

// dropper is a writer that can say it drops what it is given now.
type dropper interface{ Dropping() bool }

// copyOutput copies r to w until r ends. It keeps reading after w fails
// (a closed log writer): an unread FIFO would stall the command. While w
// drops, it reads once per dropPause, the FIFO's capacity at a time.
func copyOutput(w io.Writer, r io.Reader) {
	buf := make([]byte, 32<<10)
	d, _ := w.(dropper)
	for {
		n, err := r.Read(buf)
		if n > 0 && w != nil {
			if _, werr := w.Write(buf[:n]); werr != nil {
				w, d = nil, nil
			}
		}
		if err != nil {
			return
		}
		if d != nil && d.Dropping() {
			if len(buf) < outputPipeBytes { // a flooding dyno's only
				buf = make([]byte, outputPipeBytes)
			}
			time.Sleep(dropPause)
		}
	}
}

// wait waits until the copiers have reached EOF (the init has exited) or
// the files were closed.
func (o *output) wait() { o.wg.Wait() }

// close stops the copiers and closes our read ends; what the init writes
// from now on is dropped until someone opens the FIFOs again.
func (o *output) close() {
	closeAll(o.files)
	o.wg.Wait()
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close() // read ends, or files the init has its own copies of
	}
}
