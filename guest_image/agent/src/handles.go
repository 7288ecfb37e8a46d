package main

// Keep the host's share daemon under its open-files limit.
//
// virtiofsd holds one open descriptor on the host for every file the guest kernel has looked up
// and still caches. A command that creates or walks tens of thousands of files would run it out
// of descriptors. While commands run, this watches the number of shared-folder inodes the guest
// holds (the fuse_inode slab) and, past half the host's limit, drops the kernel's cached, unused
// dentries and inodes: virtiofsd closes their descriptors, and a later access looks the file up
// again. Nothing is lost; files still open stay open.

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	defaultHandles = 8000 // when the host does not say (an older host)
	pollNear       = 200 * time.Millisecond
	pollFar        = time.Second // below a quarter of the limit: a long command is not woken five times a second
	slabObjects    = "/sys/kernel/slab/fuse_inode/objects"
)

type HandleKeeper struct {
	mu        sync.Mutex
	reclaimAt int
	reclaims  int
	busy      int
	started   bool
	wake      chan struct{}
}

var keeper = &HandleKeeper{reclaimAt: defaultHandles / 2, wake: make(chan struct{}, 1)}

func (k *HandleKeeper) configure(shareHandles int) {
	if shareHandles > 0 {
		k.mu.Lock()
		k.reclaimAt = shareHandles / 2
		if k.reclaimAt < 64 {
			k.reclaimAt = 64
		}
		k.mu.Unlock()
	}
}

// fuseInodes: shared-folder inodes the guest kernel holds now (-1 when it cannot tell).
func fuseInodes() int {
	if data, err := readSmall(slabObjects); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "fuse_inode ") {
			if n, err := strconv.Atoi(strings.Fields(sc.Text())[1]); err == nil {
				return n
			}
		}
	}
	return -1
}

func dropCachedInodes() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("2\n"), 0o644)
}

// watching is called when a command starts; the function it returns, when it ends. It watches
// from pollFar after a command starts, and once when it ends: a short command (most of them)
// costs one look, at its end.
func (k *HandleKeeper) watching() func() {
	k.mu.Lock()
	k.busy++
	first := k.busy == 1
	if !k.started {
		k.started = true
		go k.loop()
	}
	k.mu.Unlock()
	if first {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
	return func() {
		k.mu.Lock()
		k.busy--
		k.mu.Unlock()
		k.check()
	}
}

// check lets go of cached files past the mark; returns how many the guest held.
func (k *HandleKeeper) check() int {
	held := fuseInodes()
	k.mu.Lock()
	mark := k.reclaimAt
	k.mu.Unlock()
	if held >= mark {
		if err := dropCachedInodes(); err != nil {
			logf("shared folder: could not drop cached files: %v", err)
		} else {
			k.mu.Lock()
			k.reclaims++
			k.mu.Unlock()
			logf("shared folder: %d files cached, past %d; let go of the unused ones", held, mark)
		}
	}
	return held
}

func (k *HandleKeeper) loop() {
	for range k.wake { // a command started while none ran
		interval := pollFar
		for {
			time.Sleep(interval)
			k.mu.Lock()
			busy, mark := k.busy, k.reclaimAt
			k.mu.Unlock()
			if busy == 0 {
				break
			}
			if k.check() >= mark/2 {
				interval = pollNear
			} else {
				interval = pollFar
			}
		}
	}
}
