/*
 * paddock-relay: the guest agent's way in, joining the virtio-serial port to its gRPC socket.
 *
 *     paddock-relay PORT_DEVICE AGENT_SOCKET
 *
 * Does what the agent's Python relay (paddock_guest/transport.py) did, in one small static
 * process and one poll(2) loop instead of two Python threads: every message of every call
 * crossed them, and each crossing woke a Python thread under software emulation (#33). The
 * port reads EOF while no host client is connected; each host connection gets a fresh
 * connection to the gRPC server, so a host that goes away cancels its calls. The agent starts
 * it and it dies with the agent (PR_SET_PDEATHSIG): the agent restarted by init starts its own.
 *
 * A host connection begins with HTTP/2's client preface. The port does not always read EOF
 * between two host connections: a guest saved right after its host hung up wakes with the old
 * connection still open here, and the new host's first bytes would go into it (and the rest of
 * a connection that is gone would open the next one). So a read that begins with the preface
 * always gets a fresh connection, and bytes that begin none (what is left of a host that went
 * away) are dropped until one does.
 * Exit codes: 2 (usage), 1 (the port or the first setup step failed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (32 * 1024)

static char buf[CHUNK];
static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof PREFACE - 1)

/* Whether these bytes begin a host connection (all of the preface, or the start of it). */
static int begins_connection(const char *data, size_t len) {
    return memcmp(data, PREFACE, len < PREFACE_LEN ? len : PREFACE_LEN) == 0;
}

/* All of it, or -1. A full port (the host reads slowly) waits until it takes more. */
static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int connect_agent(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) return -1;
    strcpy(addr.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static void hang_up(int *conn) {
    if (*conn >= 0) {
        shutdown(*conn, SHUT_RDWR);
        close(*conn);
        *conn = -1;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: paddock-relay PORT_DEVICE AGENT_SOCKET\n", stderr);
        return 2;
    }
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) return 1; /* the agent is gone */
    signal(SIGPIPE, SIG_IGN); /* a write to a gRPC connection that closed is an error, not a death */
    int port = open(argv[1], O_RDWR | O_CLOEXEC);
    if (port < 0) {
        fprintf(stderr, "paddock-relay: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int conn = -1;
    for (;;) {
        struct pollfd fds[2] = {{.fd = port, .events = POLLIN}, {.fd = conn, .events = POLLIN}};
        int n = poll(fds, conn >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("paddock-relay: poll");
            return 1;
        }
        if (conn >= 0 && fds[1].revents) { /* what the gRPC server says goes back to the host */
            ssize_t got = read(conn, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (got <= 0 || write_all(port, buf, (size_t)got) != 0) {
                /* The server hung up (or the port failed): as the Python relay did, the next
                 * bytes from the host open a new connection. */
                hang_up(&conn);
            }
            continue;
        }
        if (!fds[0].revents) continue;
        ssize_t got = read(port, buf, sizeof buf);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            got = 0;
        }
        if (got == 0) { /* the host end is closed: drop ours and wait for a new host */
            hang_up(&conn);
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        if (conn >= 0 && (size_t)got >= PREFACE_LEN && begins_connection(buf, (size_t)got))
            hang_up(&conn); /* a new host: its own connection, whatever the old one was doing */
        if (conn < 0) {
            if (!begins_connection(buf, (size_t)got)) continue; /* the rest of a host that is gone */
            conn = connect_agent(argv[2]);
        }
        if (conn < 0 || write_all(conn, buf, (size_t)got) != 0) hang_up(&conn);
    }
}
