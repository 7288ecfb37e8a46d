// Command paddock-agent is the Paddock guest agent: the gRPC server inside the sandbox VM.
//
// It runs as root in the guest (started by busybox init, respawned if it dies) and serves
// paddock.guest.v1.GuestAgent (protos/paddock/guest/v1/agent.proto) on a unix socket only root
// can open. The static relay paddock-relay (guest_image/helper/relay.c) joins that socket to the
// virtio-serial port `paddock.agent`, whose host end is a unix socket only the host user can open.
//
// Commands run as the folder's owner through paddock-runas (guest_image/helper/runas.c), in
// their own session and the commands' cgroup, so a timeout or a cancelled call kills everything
// they started. Every file operation is confined to /workspace.
//
// One static Go binary (built by guest_image/agent/build.sh with the guest suite's own Debian
// Go packages): it replaced a Python agent whose interpreter and imports took about 2.3 s of a
// cold boot under software emulation (#33).
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	pb "paddock/agentpb"
)

// AgentVersion is what Info reports.
const AgentVersion = "0.2.0"

const (
	agentSocket     = "/run/paddock/agent.sock"
	sharesDone      = "/run/paddock-shares" // written by /opt/paddock/shares once the mounts were tried
	portName        = "paddock.agent"
	agentHome       = "/home/agent"
	runasPath       = "/opt/paddock/bin/paddock-runas"
	relayPath       = "/opt/paddock/bin/paddock-relay"
	busyboxPath     = "/opt/paddock/bin/busybox"
	caPath          = "/etc/ssl/certs/paddock-egress-ca.pem"
	egressAddr      = "127.0.0.1:3128"
	commandsCgroup  = "/sys/fs/cgroup/commands/cgroup.procs"
	bootKeyMetadata = "paddock-boot-key"
	readCap         = 16 * 1024 * 1024
	listCap         = 10000
	chunk           = 32 * 1024
	maxMessage      = 64 * 1024 * 1024
	mountWait       = 20 * time.Second
)

// workspace is /workspace, or PADDOCK_WORKSPACE (the Go tests point it at a folder of their own).
var workspace = envOr("PADDOCK_WORKSPACE", "/workspace")

// shareMounts: the shares the host may attach after a snapshot restore: tag -> mount point, read-only.
var shareMounts = map[string]struct {
	path     string
	readOnly bool
}{
	"workspace": {"/workspace", false},
	"profile":   {"/home/agent/.claude", true},
}

// execAsRoot is set by the host's fence tests only (VMConfig.guest_root): commands run as guest
// root, as an attacker who escalated inside the guest would. The host's fence must hold against it.
var execAsRoot = kernelFlag("paddock.exec_as_root")

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func kernelFlag(flag string) bool {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(data)) {
		if f == flag {
			return true
		}
	}
	return false
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "paddock-agent: "+format+"\n", args...)
}

func uptime() float64 {
	data, err := readSmall("/proc/uptime")
	if err != nil {
		return 0
	}
	var up float64
	fmt.Sscanf(string(data), "%f", &up)
	return up
}

// readSmall reads a small kernel file with plain system calls.
func readSmall(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 256)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func findPort(name string) string {
	base := "/sys/class/virtio-ports"
	entries, err := os.ReadDir(base)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(base, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(data)) == name {
			return "/dev/" + e.Name()
		}
	}
	return ""
}

func newServer(agent *Agent) *grpc.Server {
	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.UnaryInterceptor(agent.keys.unary),
		grpc.StreamInterceptor(agent.keys.stream),
	)
	pb.RegisterGuestAgentServer(server, agent)
	return server
}

// waitForShares: the contract with the share script (rootfs/opt/paddock/shares, started beside
// the agent by init): the agent listens on nothing before /run/paddock-shares exists, so the
// host's first call, and every command after it, finds the folder mounted (or never mounted).
func waitForShares() {
	for {
		if _, err := os.Stat(sharesDone); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func main() {
	waitForShares()
	if err := os.MkdirAll(filepath.Dir(agentSocket), 0o700); err != nil {
		logf("cannot make %s: %v", filepath.Dir(agentSocket), err)
		os.Exit(1)
	}
	os.Remove(agentSocket)
	listener, err := net.Listen("unix", agentSocket)
	if err != nil {
		logf("cannot listen on %s: %v", agentSocket, err)
		os.Exit(1)
	}
	os.Chmod(agentSocket, 0o600)
	agent := NewAgent()
	server := newServer(agent)
	watcher.ensure(agent.hub) // when the agent restarts with the shared folder already mounted
	go func() {
		if err := server.Serve(listener); err != nil {
			logf("server stopped: %v", err)
			os.Exit(1)
		}
	}()
	port := ""
	for i := 0; i < 200 && port == ""; i++ {
		if port = findPort(portName); port == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if port == "" {
		logf("no virtio-serial port named %s; serving on %s only", portName, agentSocket)
		select {}
	}
	relay := exec.Command(relayPath, port, agentSocket)
	relay.Stderr = os.Stderr
	if err := relay.Start(); err != nil {
		logf("cannot start the relay: %v", err)
		os.Exit(1)
	}
	logf("ready on %s (relay %d; guest uptime %.2f s)", port, relay.Process.Pid, uptime())
	err = relay.Wait()
	logf("the relay stopped (%v); the agent stops so that init starts both again", err)
	os.Exit(1)
}
