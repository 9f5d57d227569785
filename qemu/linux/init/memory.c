/*
 * Checks of memory one physical page backs at two virtual addresses:
 * copy-on-write, shared anonymous memory, System V shm, a file mapped
 * twice, and the page cache seen by read()/write() and by mmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "checks.h"

#define PAGES 4u
#define WORDS (PAGES * PAGE / 4u)

static uint32_t *map_anon(int flags)
{
    void *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The child of a fork sees the parent's stores made just before it, and
 * its own stores after the copy stay its own. */
static const char *cow_child(void *arg)
{
    uint32_t *p = arg;
    const char *why = expect(p, WORDS, 1, "the child reading the parent's pre-fork stores");
    if (why)
        return why;
    fill(p, WORDS, 2);
    return expect(p, WORDS, 2, "the child reading its own copy");
}

const char *check_fork_cow(void)
{
    uint32_t *p = map_anon(MAP_PRIVATE);
    if (!p)
        return failf("mmap: %s", strerror(errno));
    fill(p, WORDS, 1);
    const char *why = in_child(cow_child, p, "fork-cow");
    if (!why)
        why = expect(p, WORDS, 1, "the parent after its child wrote its copy");
    if (!why) {
        fill(p, WORDS, 3);
        why = expect(p, WORDS, 3, "the parent writing after the child exited");
    }
    munmap(p, PAGES * PAGE);
    return why;
}

static const char *shared_child(void *arg)
{
    uint32_t *p = arg;
    const char *why = expect(p, WORDS, 4, "the child reading the parent's stores");
    if (!why)
        fill(p, WORDS, 5);
    return why;
}

const char *check_shared_anon(void)
{
    uint32_t *p = map_anon(MAP_SHARED);
    if (!p)
        return failf("mmap: %s", strerror(errno));
    fill(p, WORDS, 4);
    const char *why = in_child(shared_child, p, "shared-anon");
    if (!why)
        why = expect(p, WORDS, 5, "the parent reading its child's stores");
    munmap(p, PAGES * PAGE);
    return why;
}

/* The child attaches the segment a second time, at another address of its
 * own: two user addresses of one page in one process. */
static const char *shm_child(void *arg)
{
    int id = *(int *)arg;
    uint32_t *first = shmat(id, NULL, 0);
    uint32_t *second = shmat(id, NULL, 0);
    if (first == (void *)-1 || second == (void *)-1)
        return failf("shmat in the child: %s", strerror(errno));
    const char *why = expect(second, WORDS, 6, "the child's second attachment");
    if (!why) {
        fill(second, WORDS, 7);
        why = expect(first, WORDS, 7, "the child's first attachment after a store through the second");
    }
    shmdt(first);
    shmdt(second);
    return why;
}

const char *check_sysv_shm(void)
{
    int id = shmget(IPC_PRIVATE, PAGES * PAGE, IPC_CREAT | 0600);
    if (id < 0)
        return failf("shmget: %s", strerror(errno));
    uint32_t *p = shmat(id, NULL, 0);
    const char *why = NULL;
    if (p == (void *)-1) {
        why = failf("shmat: %s", strerror(errno));
    } else {
        fill(p, WORDS, 6);
        why = in_child(shm_child, &id, "sysv-shm");
        if (!why)
            why = expect(p, WORDS, 7, "the parent after the child's stores");
        shmdt(p);
    }
    shmctl(id, IPC_RMID, NULL);
    return why;
}

/* One tmpfs file mapped shared at two addresses of one process: stores
 * through each mapping, loads through the other, word by word. */
const char *check_file_twice(void)
{
    int fd = scratch_file("twice", PAGES);
    if (fd < 0)
        return failf("the scratch file: %s", strerror(errno));
    const char *why = NULL;
    volatile uint32_t *a = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    volatile uint32_t *b = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) {
        why = failf("mmap: %s", strerror(errno));
        goto out;
    }
    for (uint32_t i = 0; i < WORDS && !why; i += 7) {
        a[i] = i ^ 0x5a5a5a5au;
        if (b[i] != (i ^ 0x5a5a5a5au))
            why = failf("word %u: a store through one mapping is not seen through the other", i);
        b[i] = i ^ 0xa5a5a5a5u;
        if (a[i] != (i ^ 0xa5a5a5a5u))
            why = failf("word %u: the other way round", i);
    }
out:
    if (a != MAP_FAILED)
        munmap((void *)a, PAGES * PAGE);
    if (b != MAP_FAILED)
        munmap((void *)b, PAGES * PAGE);
    close(fd);
    return why;
}

/*
 * The ARM926 allocates lines on reads only, and 16 KiB of traffic replaces
 * its whole D-cache: a check that shows a missing flush reads a line first
 * (so that it is held, or dirtied, in the cache) and keeps the system call
 * in between small (so that it does not evict it). LINE words are one line.
 */
#define LINE 8u

/* write() puts data in the page cache through the kernel's address; a
 * mapping made (and read) before must see it, and so must one made after. */
const char *check_page_cache_write_then_mmap(void)
{
    static uint32_t buffer[WORDS];
    int fd = scratch_file("written", PAGES);
    if (fd < 0)
        return failf("the scratch file: %s", strerror(errno));
    const char *why = NULL;
    volatile uint32_t *before = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (before == MAP_FAILED) {
        why = failf("mmap: %s", strerror(errno));
        goto out;
    }
    if (before[0] != 0)
        why = failf("the new file's first word is %#x", (unsigned)before[0]);
    fill(buffer, LINE, 8);
    if (!why && pwrite(fd, buffer, LINE * 4, 0) != (ssize_t)(LINE * 4))
        why = failf("pwrite: %s", strerror(errno));
    if (!why)
        why = expect(before, LINE, 8, "a mapping read before write()");
    fill(buffer, WORDS, 9);
    if (!why && pwrite(fd, buffer, sizeof buffer, 0) != (ssize_t)sizeof buffer)
        why = failf("pwrite: %s", strerror(errno));
    if (!why) {
        uint32_t *after = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
        if (after == MAP_FAILED) {
            why = failf("mmap: %s", strerror(errno));
        } else {
            why = expect(after, WORDS, 9, "a mapping made after write()");
            munmap(after, PAGES * PAGE);
        }
    }
    munmap((void *)before, PAGES * PAGE);
out:
    close(fd);
    return why;
}

/* Stores through a shared mapping, into a line read first; read() through
 * the kernel's address must see them, mapped and after munmap. */
const char *check_mmap_write_then_read(void)
{
    static uint32_t buffer[WORDS];
    int fd = scratch_file("mapped", PAGES);
    if (fd < 0)
        return failf("the scratch file: %s", strerror(errno));
    const char *why = NULL;
    volatile uint32_t *p =
        mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        why = failf("mmap: %s", strerror(errno));
        goto out;
    }
    if (p[0] != 0)
        why = failf("the new file's first word is %#x", (unsigned)p[0]);
    fill(p, LINE, 10);
    if (!why && pread(fd, buffer, LINE * 4, 0) != (ssize_t)(LINE * 4))
        why = failf("pread: %s", strerror(errno));
    if (!why)
        why = expect(buffer, LINE, 10, "read() of a line written through a mapping");
    fill(p, WORDS, 11);
    munmap((void *)p, PAGES * PAGE);
    if (!why && pread(fd, buffer, sizeof buffer, 0) != (ssize_t)sizeof buffer)
        why = failf("pread: %s", strerror(errno));
    if (!why)
        why = expect(buffer, WORDS, 11, "read() after munmap");
out:
    close(fd);
    return why;
}
