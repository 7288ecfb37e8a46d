package main

// Exec: run one command as the workspace's owner, in its own session, and stream it.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	pb "paddock/agentpb"
)

// commandID: the host's id for a command (ExecRequest.command_id).
var commandID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func commandEnv(extra, request map[string]string) []string {
	env := map[string]string{
		"PATH":   "/usr/local/bin:/usr/bin:/bin",
		"HOME":   agentHome,
		"USER":   "agent",
		"LANG":   "C.UTF-8",
		"TMPDIR": "/tmp",
	}
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range request {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func envPath(env []string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return kv[5:]
		}
	}
	return ""
}

// which finds a program on PATH as the shell would (an executable file, not a folder).
func which(name, path string) bool {
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		full := filepath.Join(dir, name)
		var st syscall.Stat_t
		if syscall.Stat(full, &st) == nil && st.Mode&syscall.S_IFMT != syscall.S_IFDIR && unix.Access(full, unix.X_OK) == nil {
			return true
		}
	}
	return false
}

// wrapArgv: one exec of the static helper paddock-runas, which joins the commands' cgroup (pids,
// memory and cpu limits) before anything runs, enters cwd, closes every inherited descriptor
// above 2, becomes the folder's owner and runs the command.
func wrapArgv(argv []string, uid, gid int, cwd string) []string {
	if execAsRoot {
		uid, gid = 0, 0
	}
	cgroup := "-"
	if _, err := os.Stat(commandsCgroup); err == nil {
		cgroup = commandsCgroup
	}
	return append([]string{runasPath, cgroup, strconv.Itoa(uid), strconv.Itoa(gid), cwd, "--"}, argv...)
}

func startFailed(message string, duration float64) *pb.ExecEvent {
	return &pb.ExecEvent{Kind: &pb.ExecEvent_Exit{Exit: &pb.ExecExit{
		Reason: pb.ExitReason_EXIT_REASON_START_FAILED, ExitCode: 127, Message: message, DurationS: duration,
	}}}
}

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

type output struct {
	stream pb.OutputStream
	data   []byte // nil: this stream is closed
}

func readPipe(f *os.File, stream pb.OutputStream, out chan<- output, stop <-chan struct{}) {
	defer f.Close()
	for {
		buf := make([]byte, chunk)
		n, err := f.Read(buf)
		if n > 0 {
			select {
			case out <- output{stream, buf[:n]}:
			case <-stop:
				return
			}
		}
		if err != nil {
			select {
			case out <- output{stream, nil}:
			case <-stop:
			}
			return
		}
	}
}

func feedStdin(f *os.File, data []byte) {
	f.Write(data) // a command that ended or stopped reading: the write fails, and it is closed all the same
	f.Close()
}

func exitStatus(state *os.ProcessState) (int, int) {
	ws, ok := state.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 0, int(ws.Signal())
	}
	return state.ExitCode(), 0
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runCommand is the body of Exec once argv and cwd are known good: start, stream, report how it
// ended. A send that fails (the host went away) or a cancelled call kills the whole group.
func (a *Agent) runCommand(req *pb.ExecRequest, stream pb.GuestAgent_ExecServer, cwd string) error {
	catchUp() // the guest may have been paused since the last command
	ctx := stream.Context()
	env := commandEnv(a.configuredEnv(), req.Env)
	execID := req.CommandId
	if !commandID.MatchString(execID) {
		execID = randomID()
	}
	started := time.Now()
	uid, gid, err := workspaceOwner()
	if err != nil {
		return statusFor(err)
	}
	argv := req.Argv
	if !strings.Contains(argv[0], "/") && !which(argv[0], envPath(env)) {
		return stream.Send(startFailed("command not found: "+argv[0], 0))
	}
	var stdinR, stdinW *os.File
	if len(req.Stdin) > 0 {
		stdinR, stdinW, err = os.Pipe()
	} else {
		stdinR, err = os.Open(os.DevNull)
	}
	if err != nil {
		return statusFor(err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		return statusFor(err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdoutR.Close()
		stdoutW.Close()
		return statusFor(err)
	}
	proc, err := os.StartProcess(runasPath, wrapArgv(argv, uid, gid, cwd), &os.ProcAttr{
		Env:   env,
		Files: []*os.File{stdinR, stdoutW, stderrW},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		if stdinW != nil {
			stdinW.Close()
		}
		return stream.Send(startFailed(fmt.Sprintf("could not start %s: %s", pyRepr(argv[0]), strerror(err)), time.Since(started).Seconds()))
	}
	pid := proc.Pid
	exited := make(chan *os.ProcessState, 1)
	go func() { // collects it however the call ends
		state, _ := proc.Wait()
		exited <- state
	}()
	done := make(chan struct{})
	defer close(done)
	go func() { // the caller went away: kill everything
		select {
		case <-ctx.Done():
			killGroup(pid)
		case <-done:
		}
	}()
	commandRuns.started(pid, execID)
	a.hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_ProcessStarted{ProcessStarted: &pb.ProcessStarted{
		ExecId: execID, Pid: int32(pid), Argv: argv, Cwd: req.Cwd,
	}}})
	if err := stream.Send(&pb.ExecEvent{Kind: &pb.ExecEvent_Started{Started: &pb.ExecStarted{ExecId: execID, Pid: int32(pid)}}}); err != nil {
		killGroup(pid)
		stdoutR.Close()
		stderrR.Close()
		return err
	}
	if stdinW != nil {
		go feedStdin(stdinW, req.Stdin)
	}

	outputs := make(chan output, 4)
	go readPipe(stdoutR, pb.OutputStream_OUTPUT_STREAM_STDOUT, outputs, done)
	go readPipe(stderrR, pb.OutputStream_OUTPUT_STREAM_STDERR, outputs, done)
	var deadline <-chan time.Time
	if req.TimeoutS > 0 {
		timer := time.NewTimer(time.Duration(req.TimeoutS * float64(time.Second)))
		defer timer.Stop()
		deadline = timer.C
	}
	timedOut := false
	var state *os.ProcessState
	for open := 2; open > 0; {
		select {
		case o := <-outputs:
			if o.data == nil {
				open--
				continue
			}
			if err := stream.Send(&pb.ExecEvent{Kind: &pb.ExecEvent_Output{Output: &pb.ExecOutput{Stream: o.stream, Data: o.data}}}); err != nil {
				killGroup(pid)
				return err
			}
		case <-deadline: // even while output flows
			timedOut = true
			killGroup(pid)
			deadline = nil
		}
	}
	select {
	case state = <-exited:
	case <-deadline:
		timedOut = true
		killGroup(pid)
		state = <-exited
	}
	killGroup(pid) // whatever the command left behind in its group goes with it
	duration := time.Since(started).Seconds()
	result := &pb.ExecExit{DurationS: duration}
	code, signal := exitStatus(state)
	switch {
	case timedOut:
		result.Reason = pb.ExitReason_EXIT_REASON_TIMED_OUT
		result.Signal = int32(syscall.SIGKILL)
		result.Message = fmt.Sprintf("killed after %s s", strconv.FormatFloat(req.TimeoutS, 'g', -1, 64))
	case signal != 0:
		result.Reason = pb.ExitReason_EXIT_REASON_SIGNALED
		result.Signal = int32(signal)
	default:
		result.Reason = pb.ExitReason_EXIT_REASON_EXITED
		result.ExitCode = int32(code)
	}
	watcher.flush(a.hub) // what the command finished writing goes out before its exit: one order
	result.Seq = a.hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_ProcessExited{ProcessExited: &pb.ProcessExited{
		ExecId: execID, Pid: int32(pid), Exit: result,
	}}})
	return stream.Send(&pb.ExecEvent{Kind: &pb.ExecEvent_Exit{Exit: result}})
}
