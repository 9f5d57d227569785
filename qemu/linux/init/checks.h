/*
 * vacmm's Linux test init: shared declarations.
 *
 * The init runs as PID 1 from the initramfs that `cargo xtask linux`
 * builds. Each check exercises one way a physical page becomes visible at
 * two virtual addresses (kernel and user, two processes, two mappings of
 * one process, data and instruction side) and verifies the bytes every
 * side sees. In QEMU every check passes whatever the kernel's cache
 * maintenance does, because QEMU models no cache: the checks are the
 * workload, and cachesan, running the same boot on its cache model, is
 * the judge (docs/cachesan-linux.md).
 *
 * Console protocol (read by xtask/src/linux/mod.rs):
 *   vacmm-linux: check NAME ok
 *   vacmm-linux: check NAME FAILED: why
 *   vacmm-linux: check NAME ok; on a VIVT cache cachesan reports what
 *   vacmm-linux: result passed=N failed=M
 */
#ifndef VACMM_CHECKS_H
#define VACMM_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#define PAGE 4096u

/* One check: returns NULL when it passed, else why it failed. */
typedef const char *(*check_fn)(void);

struct check {
    const char *name;
    check_fn run;
    /* What cachesan reports on a VIVT cache (the ARM926), if anything: a
     * negative control (the check leaves out maintenance on purpose) or a
     * gap Linux leaves. In QEMU the check still passes. */
    const char *reported;
};

/* A failure message with printf formatting (a static buffer). */
const char *failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fills `n` words at `p` with a pattern of `seed`, and checks it. */
void fill(volatile uint32_t *p, size_t n, uint32_t seed);
const char *expect(const volatile uint32_t *p, size_t n, uint32_t seed, const char *where);

/* Forks a child that runs `body` and exits with its result (0 = passed);
 * waits for it and returns its failure, if any. */
const char *in_child(const char *(*body)(void *), void *arg, const char *what);

/* A file in /tmp (tmpfs, the page cache) of `pages` pages, open O_RDWR. */
int scratch_file(const char *name, size_t pages);

/* The cachesan phase marker: a labelled point in the report. */
void phase(const char *name);

/* The checks, by file. */
const char *check_fork_cow(void);
const char *check_shared_anon(void);
const char *check_sysv_shm(void);
const char *check_file_twice(void);
const char *check_page_cache_write_then_mmap(void);
const char *check_mmap_write_then_read(void);
const char *check_pipe(void);
const char *check_signal(void);
const char *check_exec(void);
const char *check_jit_cacheflush(void);
const char *control_jit_no_cacheflush(void);
const char *check_io_uring(void);
const char *check_perf_ring(void);
const char *check_packet_ring(void);
const char *check_bpf_array(void);
/* xdp.c */
const char *check_xdp_ring(void);

/* The exec check's second program: /init started with this argument. */
#define EXEC_CHILD_ARG "vacmm-exec-child"
int exec_child_main(int argc, char **argv);

#endif
