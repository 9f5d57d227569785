/*
 * vacmm's Linux test init: the harness (see checks.h for the protocol).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

static const struct check CHECKS[] = {
    {"fork-cow", check_fork_cow, NULL},
    {"shared-anon", check_shared_anon, NULL},
    {"sysv-shm", check_sysv_shm, NULL},
    {"file-mapped-twice", check_file_twice, NULL},
    {"page-cache-write-then-mmap", check_page_cache_write_then_mmap, NULL},
    {"mmap-write-then-read", check_mmap_write_then_read, NULL},
    {"pipe", check_pipe, NULL},
    {"signal", check_signal, NULL},
    {"exec", check_exec, NULL},
    {"jit-cacheflush", check_jit_cacheflush, NULL},
    {"jit-no-cacheflush", control_jit_no_cacheflush,
     "StaleFetch of code control_jit_no_cacheflush generated (the negative control)"},
    {"io_uring", check_io_uring, "the rings io_uring shares without cache maintenance"},
    {"perf-ring", check_perf_ring, "the ring perf writes through vmalloc"},
    {"packet-ring", check_packet_ring, "the user's alias of AF_PACKET's ring"},
    {"bpf-mmap-array", check_bpf_array, "the BPF array map written through vmalloc"},
    {"xdp-ring", check_xdp_ring, "the UMEM the kernel copies AF_XDP's frames out of"},
};

const char *failf(const char *fmt, ...)
{
    static char buffer[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buffer, sizeof buffer, fmt, args);
    va_end(args);
    return buffer;
}

void fill(volatile uint32_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = seed * 0x9e3779b9u + (uint32_t)i;
}

const char *expect(const volatile uint32_t *p, size_t n, uint32_t seed, const char *where)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t want = seed * 0x9e3779b9u + (uint32_t)i;
        if (p[i] != want)
            return failf("%s: word %zu is %#x, expected %#x", where, i, (unsigned)p[i],
                         (unsigned)want);
    }
    return NULL;
}

const char *in_child(const char *(*body)(void *), void *arg, const char *what)
{
    int report[2];
    if (pipe(report) != 0)
        return failf("%s: pipe: %s", what, strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return failf("%s: fork: %s", what, strerror(errno));
    if (pid == 0) {
        close(report[0]);
        const char *why = body(arg);
        if (why != NULL) {
            ssize_t unused = write(report[1], why, strlen(why));
            (void)unused;
        }
        _exit(why == NULL ? 0 : 1);
    }
    close(report[1]);
    static char why[256];
    ssize_t got = read(report[0], why, sizeof why - 1);
    close(report[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return failf("%s: waitpid: %s", what, strerror(errno));
    if (got > 0) {
        why[got] = '\0';
        return why;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return failf("%s: the child ended with status %#x", what, status);
    return NULL;
}

int scratch_file(const char *name, size_t pages)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/%s", name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && ftruncate(fd, (off_t)(pages * PAGE)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * cachesan's phase annotation (vacmm::arch::annotate): two rotations of r12
 * that leave it unchanged, then `orr r1, r1, r1`, with r0 pointing at a
 * NUL-terminated label. Nothing happens on the CPU; cachesan labels the
 * reports that follow with the string.
 */
void phase(const char *name)
{
    register const char *label __asm__("r0") = name;
    __asm__ volatile("mov r12, r12, ror #7\n\t"
                     "mov r12, r12, ror #25\n\t"
                     "orr r1, r1, r1"
                     :
                     : "r"(label)
                     : "r12", "memory");
}

static void setup(void)
{
    mkdir("/proc", 0755);
    mount("proc", "/proc", "proc", 0, NULL);
    mkdir("/tmp", 01777);
    mount("tmpfs", "/tmp", "tmpfs", 0, "size=16m");
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], EXEC_CHILD_ARG) == 0)
        return exec_child_main(argc, argv);
    setup();
    printf("vacmm-linux: the test init, %zu checks\n", sizeof CHECKS / sizeof CHECKS[0]);
    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof CHECKS / sizeof CHECKS[0]; i++) {
        const struct check *c = &CHECKS[i];
        phase(c->name);
        const char *why = c->run();
        if (why != NULL) {
            printf("vacmm-linux: check %s FAILED: %s\n", c->name, why);
            failed++;
            continue;
        }
        if (c->reported != NULL)
            printf("vacmm-linux: check %s ok; on a VIVT cache cachesan reports %s\n", c->name,
                   c->reported);
        else
            printf("vacmm-linux: check %s ok\n", c->name);
        passed++;
    }
    phase("end");
    printf("vacmm-linux: result passed=%u failed=%u\n", passed, failed);
    fflush(stdout);
    sync();
    /* QEMU runs with -no-reboot: the restart ends it. */
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}
