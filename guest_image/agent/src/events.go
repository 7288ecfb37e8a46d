package main

// Guest events (processes started and exited, files changed), fanned out to every Events stream.

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"time"

	pb "paddock/agentpb"
)

// runs tells which Exec a process belongs to: each command runs in its own session (setsid),
// whose id is the pid the agent started. The last few ended runs are kept: their files may
// still be reported.
type runs struct {
	mu       sync.Mutex
	bySid    map[int]string
	sidOrder []int
	byPid    map[int]string
	pidOrder []int
}

const keepRuns = 256

var commandRuns = &runs{bySid: map[int]string{}, byPid: map[int]string{}}

func (r *runs) started(sid int, execID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byPid, sid)
	if _, ok := r.bySid[sid]; !ok {
		r.sidOrder = append(r.sidOrder, sid)
	}
	r.bySid[sid] = execID
	for len(r.sidOrder) > keepRuns {
		delete(r.bySid, r.sidOrder[0])
		r.sidOrder = r.sidOrder[1:]
	}
}

func (r *runs) of(pid int) string {
	r.mu.Lock()
	if found, ok := r.bySid[pid]; ok {
		r.mu.Unlock()
		return found
	}
	if found, ok := r.byPid[pid]; ok {
		r.mu.Unlock()
		return found
	}
	r.mu.Unlock()
	sid, ok := sessionOf(pid) // a process the command started: its session, while it still runs
	if !ok {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	found := r.bySid[sid]
	if found != "" {
		if _, ok := r.byPid[pid]; !ok {
			r.pidOrder = append(r.pidOrder, pid)
		}
		r.byPid[pid] = found
		for len(r.pidOrder) > 4*keepRuns {
			delete(r.byPid, r.pidOrder[0])
			r.pidOrder = r.pidOrder[1:]
		}
	}
	return found
}

// sessionOf reads a process's session id from /proc/PID/stat (state, ppid, pgrp, session).
func sessionOf(pid int) (int, bool) {
	data, err := readSmall(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(string(fields[3]))
	return sid, err == nil
}

// subscriber is one open Events stream's queue: unbounded, as the host reads it as fast as it can.
type subscriber struct {
	mu     sync.Mutex
	items  []*pb.GuestEvent
	closed bool
	wake   chan struct{}
}

func (s *subscriber) put(ev *pb.GuestEvent) {
	s.mu.Lock()
	s.items = append(s.items, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued (nil and false once closed and empty).
func (s *subscriber) take() ([]*pb.GuestEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := s.items
	s.items = nil
	return items, !(s.closed && len(items) == 0)
}

// EventHub fans guest events out to every open Events stream.
type EventHub struct {
	mu          sync.Mutex
	seq         uint64
	subscribers map[*subscriber]bool
}

func newHub() *EventHub { return &EventHub{subscribers: map[*subscriber]bool{}} }

func nowUnix() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// publish numbers an event (in the one order every stream sees) and queues it on every stream.
func (h *EventHub) publish(ev *pb.GuestEvent) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.TimeUnix = nowUnix()
	ev.Seq = h.seq
	for s := range h.subscribers {
		s.put(ev)
	}
	return h.seq
}

func (h *EventHub) lastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// subscribe opens a queue of every event published from now on, led by a marker (an event with
// no kind and the seq of the last event before it): the stream is open from there.
func (h *EventHub) subscribe() *subscriber {
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.items = append(s.items, &pb.GuestEvent{TimeUnix: nowUnix(), Seq: h.seq})
	h.subscribers[s] = true
	return s
}

func (h *EventHub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subscribers, s)
	h.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
