/*
 * paddock-runas: how the guest agent starts every command, in one exec of a static binary.
 *
 *     paddock-runas CGROUP_PROCS|- UID GID -- CMD [ARG...]
 *
 * Joins the commands' cgroup (its pids, memory and cpu limits) before anything of the command
 * runs, drops to the folder's owner (no supplementary groups), and executes CMD. It replaces a
 * shell plus util-linux's setpriv, whose dynamic loading cost about 75 ms a command under
 * software emulation. Exit codes when it cannot: 125 (its own failure), 126/127 (like a shell).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int number(const char *text, unsigned long *out) {
    char *end = NULL;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

int main(int argc, char **argv) {
    unsigned long uid, gid;
    if (argc < 6 || strcmp(argv[4], "--") != 0 || !number(argv[2], &uid) || !number(argv[3], &gid)) {
        fputs("usage: paddock-runas CGROUP_PROCS|- UID GID -- CMD [ARG...]\n", stderr);
        return 125;
    }
    if (strcmp(argv[1], "-") != 0) {
        int fd = open(argv[1], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) { /* "0": the writing process itself */
            perror("paddock-runas: joining the commands' cgroup");
            return 125;
        }
        close(fd);
    }
    if (uid != 0 || gid != 0) {
        if (setgroups(0, NULL) != 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            perror("paddock-runas: becoming the folder's owner");
            return 125;
        }
    }
    execvp(argv[5], argv + 5);
    fprintf(stderr, "paddock-runas: %s: %s\n", argv[5], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
