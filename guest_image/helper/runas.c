/*
 * paddock-runas: how the guest agent starts every command, in one exec of a static binary.
 *
 *     paddock-runas CGROUP_PROCS|- UID GID CWD|- -- CMD [ARG...]
 *
 * Joins the commands' cgroup (its pids, memory and cpu limits) before anything of the command
 * runs, enters CWD, closes every descriptor but 0, 1 and 2 (whatever the agent's libraries left
 * inheritable), drops to the folder's owner (no supplementary groups), and executes CMD. It
 * replaces a shell plus util-linux's setpriv, whose dynamic loading cost about 75 ms a command
 * under software emulation; the agent starts it with posix_spawn (its own new session and the
 * three pipes), which cannot change directory, hence CWD here. Exit codes when it cannot: 125
 * (its own failure), 126/127 (like a shell).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int number(const char *text, unsigned long *out) {
    char *end = NULL;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

/* Every descriptor above 2 closed, or -1. close_range(2) where the kernel has it (5.9+), else
 * each one /proc/self/fd lists. */
static int close_inherited(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return 0;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    int own = dirfd(d);
    struct dirent *e;
    int fds[1024], n = 0;
    while ((e = readdir(d)) != NULL && n < 1024) {
        unsigned long fd;
        if (number(e->d_name, &fd) && fd > 2 && (int)fd != own) fds[n++] = (int)fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++) close(fds[i]);
    return n == 1024 ? -1 : 0;
}

int main(int argc, char **argv) {
    unsigned long uid, gid;
    if (argc < 7 || strcmp(argv[5], "--") != 0 || !number(argv[2], &uid) || !number(argv[3], &gid)) {
        fputs("usage: paddock-runas CGROUP_PROCS|- UID GID CWD|- -- CMD [ARG...]\n", stderr);
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
    if (strcmp(argv[4], "-") != 0 && chdir(argv[4]) != 0) {
        perror("paddock-runas: entering the command's folder");
        return 125;
    }
    if (close_inherited() != 0) {
        perror("paddock-runas: closing inherited descriptors");
        return 125;
    }
    if (uid != 0 || gid != 0) {
        if (setgroups(0, NULL) != 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            perror("paddock-runas: becoming the folder's owner");
            return 125;
        }
    }
    execvp(argv[6], argv + 6);
    fprintf(stderr, "paddock-runas: %s: %s\n", argv[6], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
