package main

// The volatile state of one file: pages written since the last fsync, and its size.
// The backing file holds only what was made durable; a power loss is the loss of
// every overlay (the daemon is killed), so nothing volatile can ever reach it later.

import (
	"sort"
	"sync"
	"syscall"
	"time"
)

const pageSize = 4096

type overlay struct {
	mu    sync.Mutex
	fd    int              // the backing file, open for reading and writing, for as long as the overlay lives
	pages map[int64][]byte // page index -> pageSize bytes (the volatile content)
	size  int64            // the volatile size
	trunc int64            // backing bytes at or beyond trunc read as zero (-1: none)
	dirty time.Time        // when the overlay first changed since it was last persisted (zero: clean)
}

// fileID names a backing file: its inode number and a generation from its birth time, as
// go-fuse's loopback does, so that a reused inode number never inherits another file's overlay.
type fileID struct {
	ino, gen uint64
}

// overlays maps a backing file to its overlay; hard links share one.
type overlays struct {
	mu    sync.Mutex
	byIno map[fileID]*overlay
}

func newOverlays() *overlays {
	return &overlays{byIno: map[fileID]*overlay{}}
}

// get returns the overlay of ino, or nil when the file has nothing volatile.
func (o *overlays) get(ino fileID) *overlay {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byIno[ino]
}

// open returns the overlay of ino, created over the backing file fd when there is none.
func (o *overlays) open(ino fileID, fd int) (*overlay, syscall.Errno) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ov := o.byIno[ino]; ov != nil {
		return ov, 0
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, errno(err)
	}
	own, err := syscall.Dup(fd)
	if err != nil {
		return nil, errno(err)
	}
	ov := &overlay{fd: own, pages: map[int64][]byte{}, size: st.Size, trunc: -1}
	o.byIno[ino] = ov
	return ov, 0
}

// drop forgets the volatile state of ino (its file is gone).
func (o *overlays) drop(ino fileID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ov := o.byIno[ino]; ov != nil {
		syscall.Close(ov.fd)
		delete(o.byIno, ino)
	}
}

// writeBack persists the overlays dirty for at least age, as the kernel's flusher writes back
// pages older than dirty_expire_centisecs (without any ordering between files).
func (o *overlays) writeBack(age time.Duration) {
	o.mu.Lock()
	due := []*overlay{}
	for _, ov := range o.byIno {
		ov.mu.Lock()
		if !ov.dirty.IsZero() && time.Since(ov.dirty) >= age {
			due = append(due, ov)
		}
		ov.mu.Unlock()
	}
	o.mu.Unlock()
	for _, ov := range due {
		ov.persist(false)
	}
}

// persistAll makes every overlay durable (a clean shutdown).
func (o *overlays) persistAll(sync bool) syscall.Errno {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first syscall.Errno
	for _, ov := range o.byIno {
		if e := ov.persist(sync); e != 0 && first == 0 {
			first = e
		}
	}
	return first
}

// readBacking fills buf from the backing file at off, zeros past its end or past trunc.
func readBacking(fd int, buf []byte, off int64, trunc int64) syscall.Errno {
	done := 0
	for done < len(buf) {
		n, err := syscall.Pread(fd, buf[done:], off+int64(done))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return errno(err)
		}
		if n == 0 {
			break
		}
		done += n
	}
	clear(buf[done:])
	if trunc >= 0 && off+int64(len(buf)) > trunc {
		from := max(trunc-off, 0)
		clear(buf[from:])
	}
	return 0
}

// page returns the volatile page idx, loaded from the backing file on first use. Caller holds mu.
func (ov *overlay) page(idx int64) ([]byte, syscall.Errno) {
	if p, ok := ov.pages[idx]; ok {
		return p, 0
	}
	p := make([]byte, pageSize)
	if e := readBacking(ov.fd, p, idx*pageSize, ov.trunc); e != 0 {
		return nil, e
	}
	ov.pages[idx] = p
	return p, 0
}

func (ov *overlay) write(data []byte, off int64) syscall.Errno {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	for done := 0; done < len(data); {
		pos := off + int64(done)
		p, e := ov.page(pos / pageSize)
		if e != 0 {
			return e
		}
		done += copy(p[pos%pageSize:], data[done:])
	}
	ov.size = max(ov.size, off+int64(len(data)))
	ov.touch()
	return 0
}

// read fills buf at off (the volatile view) and returns how many bytes lie before the end of file.
func (ov *overlay) read(buf []byte, off int64) (int, syscall.Errno) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if e := readBacking(ov.fd, buf, off, ov.trunc); e != 0 {
		return 0, e
	}
	end := off + int64(len(buf))
	for idx := off / pageSize; idx*pageSize < end; idx++ {
		p, ok := ov.pages[idx]
		if !ok {
			continue
		}
		start := idx * pageSize
		lo, hi := max(start, off), min(start+pageSize, end)
		copy(buf[lo-off:hi-off], p[lo-start:hi-start])
	}
	return int(max(0, min(int64(len(buf)), ov.size-off))), 0
}

func (ov *overlay) truncate(size int64) syscall.Errno {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if size < ov.size {
		for idx := range ov.pages {
			if idx*pageSize >= size {
				delete(ov.pages, idx)
			}
		}
		if size%pageSize != 0 {
			p, e := ov.page(size / pageSize)
			if e != 0 {
				return e
			}
			clear(p[size%pageSize:])
		}
		if ov.trunc < 0 || size < ov.trunc {
			ov.trunc = size
		}
	}
	ov.size = size
	ov.touch()
	return 0
}

// touch notes the first change since the last persist. Caller holds mu.
func (ov *overlay) touch() {
	if ov.dirty.IsZero() {
		ov.dirty = time.Now()
	}
}

// persist writes the volatile state to the backing file, optionally fsyncs it, and
// leaves the overlay empty.
func (ov *overlay) persist(sync bool) syscall.Errno {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	fd := ov.fd
	if ov.trunc >= 0 {
		if err := syscall.Ftruncate(fd, ov.trunc); err != nil {
			return errno(err)
		}
	}
	indexes := make([]int64, 0, len(ov.pages))
	for idx := range ov.pages {
		indexes = append(indexes, idx)
	}
	sort.Slice(indexes, func(i, j int) bool { return indexes[i] < indexes[j] })
	for _, idx := range indexes {
		start := idx * pageSize
		n := min(int64(pageSize), ov.size-start)
		if n <= 0 {
			continue
		}
		if _, err := syscall.Pwrite(fd, ov.pages[idx][:n], start); err != nil {
			return errno(err)
		}
	}
	if err := syscall.Ftruncate(fd, ov.size); err != nil {
		return errno(err)
	}
	if sync {
		if err := syscall.Fsync(fd); err != nil {
			return errno(err)
		}
	}
	clear(ov.pages)
	ov.trunc = -1
	ov.dirty = time.Time{}
	return 0
}

func errno(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
