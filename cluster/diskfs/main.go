// faultbed-diskfs: a FUSE passthrough that forgets un-fsynced writes when it dies.
//
// Mounted over a node's data directory with the backing directory standing for the
// disk. Metadata operations (create, mkdir, rename, unlink, link, chmod) go to the
// backing directory at once: they are durable immediately, as on a filesystem that
// journals metadata synchronously. File contents and sizes are volatile until
// fsync/fdatasync (msync of a shared mapping reaches us as writes plus fsync):
// writes go to an in-memory overlay per inode, and fsync writes it to the backing
// file. close() does not make data durable (POSIX promises nothing; ext4's
// auto_da_alloc heuristics are not modelled). By default nothing un-fsynced ever
// becomes durable (the strictest reading of POSIX, as LazyFS does); -writeback D
// persists data dirty for D, as the kernel's flusher (dirty_expire_centisecs) would. A power loss is SIGKILL of this
// daemon: the overlays vanish with it, the kernel aborts the connection and drops
// the mount's page cache, and nothing can write the lost data back. SIGTERM or
// SIGINT is a clean shutdown: unmount, then persist every overlay. Slow or failing
// fsync is injected through the -control file (read again on SIGHUP); a failed fsync
// leaves the data volatile.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

type diskFS struct {
	overlays    *overlays
	syncBacking bool
	faults      atomic.Pointer[faults]
}

// faults are injected while the daemon runs: read from the -control file at start and on SIGHUP.
type faults struct {
	FsyncError bool `json:"fsync_error"` // fsync returns EIO and makes nothing durable
	DelayMs    int  `json:"delay_ms"`    // added to every write and fsync
}

func (d *diskFS) loadFaults(path string) error {
	f := &faults{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, f); err != nil {
				return fmt.Errorf("control file %s: %w", path, err)
			}
		}
	}
	d.faults.Store(f)
	return nil
}

func (d *diskFS) delay() {
	if f := d.faults.Load(); f != nil && f.DelayMs > 0 {
		time.Sleep(time.Duration(f.DelayMs) * time.Millisecond)
	}
}

// node is a loopback node whose regular files keep their contents in overlays.
type node struct {
	fs.LoopbackNode
	disk *diskFS
}

var (
	_ = (fs.NodeOpener)((*node)(nil))
	_ = (fs.NodeLookuper)((*node)(nil))
	_ = (fs.NodeCreater)((*node)(nil))
	_ = (fs.NodeGetattrer)((*node)(nil))
	_ = (fs.NodeSetattrer)((*node)(nil))
	_ = (fs.NodeUnlinker)((*node)(nil))
	_ = (fs.NodeRenamer)((*node)(nil))
	_ = (fs.NodeCopyFileRanger)((*node)(nil))
)

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

// statID is the fileID of a backing file (by fd when path is ""), as go-fuse's loopback numbers it.
func statID(fd int, path string) (fileID, uint32, syscall.Errno) {
	var stx unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	} else {
		fd = unix.AT_FDCWD
	}
	if err := unix.Statx(fd, path, flags, unix.STATX_INO|unix.STATX_BTIME|unix.STATX_TYPE|unix.STATX_NLINK, &stx); err != nil {
		return fileID{}, 0, errno(err)
	}
	gen := uint64(1)
	if stx.Btime.Sec != 0 || stx.Btime.Nsec != 0 {
		gen = uint64(stx.Btime.Sec)*1e9 + uint64(stx.Btime.Nsec)
	}
	return fileID{stx.Ino, gen}, stx.Nlink, 0
}

// openBacking opens the backing file without O_TRUNC and O_APPEND (both act on the overlay),
// readable when asked for writing only.
func openBacking(path string, flags uint32, mode uint32) (int, syscall.Errno) {
	clean := int(flags) &^ (syscall.O_TRUNC | syscall.O_APPEND | syscall.O_EXCL | fuse.FMODE_EXEC)
	if clean&syscall.O_ACCMODE == syscall.O_WRONLY { // the overlay reads whole pages
		clean = clean&^syscall.O_ACCMODE | syscall.O_RDWR
	}
	fd, err := syscall.Open(path, clean|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return -1, errno(err)
	}
	return fd, 0
}

// newFile wraps an open backing file; its overlay is found by the file's own identity.
func (n *node) newFile(fd int, flags uint32) (*file, syscall.Errno) {
	ino, _, e := statID(fd, "")
	if e != 0 {
		syscall.Close(fd)
		return nil, e
	}
	f := &file{fd: fd, ino: ino, disk: n.disk}
	if flags&syscall.O_TRUNC != 0 {
		ov, e := n.disk.overlays.open(ino, fd)
		if e != 0 {
			syscall.Close(fd)
			return nil, e
		}
		if e := ov.truncate(0); e != 0 {
			syscall.Close(fd)
			return nil, e
		}
	}
	return f, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, e := openBacking(n.backingPath(), flags, 0)
	if e != 0 {
		return nil, 0, e
	}
	f, e := n.newFile(fd, flags)
	return f, 0, e
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32,
	out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	path := filepath.Join(n.backingPath(), name)
	fd, e := openBacking(path, flags|syscall.O_CREAT, mode)
	if e != 0 {
		return nil, nil, 0, e
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, nil, 0, errno(err)
	}
	id, _, e := statID(fd, "")
	if e != 0 {
		syscall.Close(fd)
		return nil, nil, 0, e
	}
	child := &node{LoopbackNode: fs.LoopbackNode{RootData: n.RootData}, disk: n.disk}
	inode := n.NewInode(ctx, child, fs.StableAttr{Mode: st.Mode, Ino: id.ino, Gen: id.gen})
	f, e := child.newFile(fd, flags)
	if e != 0 {
		return nil, nil, 0, e
	}
	out.FromStat(&st)
	f.patch(&out.Attr)
	return inode, f, 0, 0
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := n.LoopbackNode.Getattr(ctx, fh, out); e != 0 {
		return e
	}
	n.disk.patchSize(n.backingPath(), &out.Attr)
	return 0
}

// Lookup answers with attributes too: their size must be the volatile one.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	child, e := n.LoopbackNode.Lookup(ctx, name, out)
	if e == 0 {
		n.disk.patchSize(filepath.Join(n.backingPath(), name), &out.Attr)
	}
	return child, e
}

// patchSize replaces a regular file's durable size by its volatile one, if it has an overlay.
func (d *diskFS) patchSize(path string, attr *fuse.Attr) {
	if attr.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	if id, _, e := statID(-1, path); e == 0 {
		if ov := d.overlays.get(id); ov != nil {
			ov.mu.Lock()
			attr.Size = uint64(ov.size)
			ov.mu.Unlock()
		}
	}
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		fd, e := openBacking(n.backingPath(), syscall.O_RDWR, 0)
		if e != 0 {
			return e
		}
		id, _, e := statID(fd, "")
		if e != 0 {
			syscall.Close(fd)
			return e
		}
		ov, e := n.disk.overlays.open(id, fd)
		syscall.Close(fd)
		if e != 0 {
			return e
		}
		if e := ov.truncate(int64(size)); e != 0 {
			return e
		}
		rest := *in
		rest.Valid &^= fuse.FATTR_SIZE
		in = &rest
	}
	// mode, owner and times: through the path (durable at once, like all metadata)
	if e := n.LoopbackNode.Setattr(ctx, nil, in, out); e != 0 {
		return e
	}
	return n.Getattr(ctx, nil, out)
}

// forget drops the overlay of the file at name in this directory when its last link goes.
func (n *node) forget(name string) {
	if id, links, e := statID(-1, filepath.Join(n.backingPath(), name)); e == 0 && links <= 1 {
		n.disk.overlays.drop(id)
	}
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.forget(name)
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if target, ok := newParent.(*node); ok && flags == 0 {
		target.forget(newName)
	}
	return n.LoopbackNode.Rename(ctx, name, &newParent.(*node).LoopbackNode, newName, flags)
}

// CopyFileRange would copy backing bytes behind the overlay's back: the kernel falls back to read+write.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle,
	offOut uint64, len uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}

// file is an open backing file; its contents are read and written through the inode's overlay.
type file struct {
	fd   int
	ino  fileID
	disk *diskFS
}

var (
	_ = (fs.FileReader)((*file)(nil))
	_ = (fs.FileWriter)((*file)(nil))
	_ = (fs.FileFsyncer)((*file)(nil))
	_ = (fs.FileFlusher)((*file)(nil))
	_ = (fs.FileReleaser)((*file)(nil))
	_ = (fs.FileGetattrer)((*file)(nil))
)

func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if ov := f.disk.overlays.get(f.ino); ov != nil {
		n, e := ov.read(buf, off)
		return fuse.ReadResultData(buf[:n]), e
	}
	n, err := syscall.Pread(f.fd, buf, off)
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(buf[:n]), 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f.disk.delay()
	ov, e := f.disk.overlays.open(f.ino, f.fd)
	if e != 0 {
		return 0, e
	}
	if e := ov.write(data, off); e != 0 {
		return 0, e
	}
	return uint32(len(data)), 0
}

// Fsync (and fdatasync, and msync through the kernel) makes the inode's volatile state durable.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	f.disk.delay()
	if fl := f.disk.faults.Load(); fl != nil && fl.FsyncError {
		return syscall.EIO // the data stays volatile
	}
	if ov := f.disk.overlays.get(f.ino); ov != nil {
		return ov.persist(f.disk.syncBacking)
	}
	return 0
}

// Flush is close(): it makes nothing durable.
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (f *file) Release(ctx context.Context) syscall.Errno {
	return errno(syscall.Close(f.fd))
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return errno(err)
	}
	out.FromStat(&st)
	f.patch(&out.Attr)
	return 0
}

func (f *file) patch(attr *fuse.Attr) {
	if ov := f.disk.overlays.get(f.ino); ov != nil {
		ov.mu.Lock()
		attr.Size = uint64(ov.size)
		ov.mu.Unlock()
	}
}

func main() {
	backing := flag.String("backing", "", "the directory standing for the disk")
	mountpoint := flag.String("mount", "", "where to mount")
	syncBacking := flag.Bool("sync-backing", false, "also fsync the backing file on fsync (real disk I/O)")
	writeBack := flag.Duration("writeback", 0, "persist data dirty for this long, as the kernel's flusher would (0: never)")
	debug := flag.Bool("debug", false, "log every FUSE request")
	control := flag.String("control", "", "JSON file of injected faults (fsync_error, delay_ms), read at start and on SIGHUP")
	flag.Parse()
	if *backing == "" || *mountpoint == "" {
		fmt.Fprintln(os.Stderr, "usage: faultbed-diskfs -backing DIR -mount DIR")
		os.Exit(3)
	}
	if err := run(*backing, *mountpoint, *control, *syncBacking, *writeBack, *debug); err != nil {
		fmt.Fprintf(os.Stderr, "faultbed-diskfs: %v\n", err)
		os.Exit(3)
	}
}

func run(backing, mountpoint, control string, syncBacking bool, writeBack time.Duration, debug bool) error {
	disk := &diskFS{overlays: newOverlays(), syncBacking: syncBacking}
	if err := disk.loadFaults(control); err != nil {
		return err
	}
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	go func() {
		for range reload {
			if err := disk.loadFaults(control); err != nil {
				fmt.Fprintf(os.Stderr, "faultbed-diskfs: %v\n", err)
			}
			fmt.Println("reloaded") // the harness waits for this before it goes on
			os.Stdout.Sync()
		}
	}()
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return fmt.Errorf("backing directory %s: %w", backing, err)
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, disk: disk}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	timeout := time.Second
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		AttrTimeout: &timeout, EntryTimeout: &timeout,
		MountOptions: fuse.MountOptions{
			AllowOther: os.Geteuid() == 0, FsName: "faultbed-diskfs:" + backing, Name: "faultbed",
			Debug: debug, DirectMount: true,
		},
	})
	if err != nil {
		return fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	if writeBack > 0 {
		go func() {
			for range time.Tick(min(writeBack/4, time.Second)) {
				disk.overlays.writeBack(writeBack)
			}
		}()
	}
	fmt.Println("mounted")
	os.Stdout.Sync()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		for i := 0; i < 50; i++ { // busy while a process still uses the mount
			if server.Unmount() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprintln(os.Stderr, "faultbed-diskfs: mount still busy; detaching it")
		syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	}()
	server.Wait()
	if e := disk.overlays.persistAll(syncBacking); e != 0 {
		return fmt.Errorf("persisting at shutdown: %v", e)
	}
	return nil
}
