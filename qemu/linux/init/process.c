/*
 * Checks of what the kernel copies between processes and builds for them:
 * pipes, signal frames, and a new program image (exec).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#define PIPE_WORDS (16u * PAGE / 4u)

static const char *pipe_child(void *arg)
{
    static uint32_t words[PIPE_WORDS];
    int fd = *(int *)arg;
    fill(words, PIPE_WORDS, 11);
    const char *bytes = (const char *)words;
    size_t left = sizeof words;
    while (left > 0) {
        ssize_t n = write(fd, bytes, left);
        if (n <= 0)
            return failf("pipe write: %s", strerror(errno));
        bytes += n;
        left -= (size_t)n;
    }
    return NULL;
}

/* 64 KiB through a pipe: more than its buffer, so writer and reader take
 * turns. */
const char *check_pipe(void)
{
    static uint32_t words[PIPE_WORDS];
    int fds[2];
    if (pipe(fds) != 0)
        return failf("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return failf("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        _exit(pipe_child(&fds[1]) == NULL ? 0 : 1);
    }
    close(fds[1]);
    char *bytes = (char *)words;
    size_t got = 0;
    while (got < sizeof words) {
        ssize_t n = read(fds[0], bytes + got, sizeof words - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != sizeof words)
        return failf("read %zu of %zu bytes", got, sizeof words);
    return expect(words, PIPE_WORDS, 11, "the pipe's reader");
}

static volatile sig_atomic_t signal_value;
static volatile sig_atomic_t signal_count;

static void on_signal(int signo, siginfo_t *info, void *context)
{
    (void)context;
    if (signo == SIGUSR1 && info->si_code == SI_QUEUE)
        signal_value = info->si_value.sival_int;
    signal_count++;
}

/* A signal queued by a child with a value: the kernel writes the frame
 * and the siginfo on the user stack, and returns through its sigreturn
 * trampoline. */
const char *check_signal(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO;
    if (sigaction(SIGUSR1, &action, NULL) != 0)
        return failf("sigaction: %s", strerror(errno));
    signal_value = 0;
    signal_count = 0;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return failf("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        union sigval value = {.sival_int = 0x600d};
        _exit(sigqueue(parent, SIGUSR1, value) == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    /* Wait for the signal only if it was sent: else sigsuspend never ends. */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return failf("the child's sigqueue failed (status %#x)", status);
    }
    sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
    if (signal_count != 2)
        return failf("%d signals handled, expected 2", (int)signal_count);
    if (signal_value != 0x600d)
        return failf("the queued value arrived as %#x", (unsigned)signal_value);
    return NULL;
}

/* The exec'd program: checks its arguments and a pattern in its data,
 * and answers with a status only it knows. */
static uint32_t exec_data[256] = {[0] = 0x13579bdf, [255] = 0x2468ace0};

int exec_child_main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[2], "second") != 0)
        return 2;
    if (exec_data[0] != 0x13579bdf || exec_data[255] != 0x2468ace0)
        return 3;
    return 42;
}

/* A new image of /init, from the page cache, in a forked child. */
const char *check_exec(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return failf("fork: %s", strerror(errno));
    if (pid == 0) {
        char *argv[] = {"/init", EXEC_CHILD_ARG, "second", NULL};
        char *envp[] = {NULL};
        execve("/init", argv, envp);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return failf("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
        return failf("the exec'd program ended with status %#x, expected exit 42", status);
    return NULL;
}
