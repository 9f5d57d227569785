/*
 * Generated code: stores through the data side, then fetches. ARM's rule
 * (ARM ARM B2.2.9, "Cache maintenance and self-modifying code") is to
 * clean the D-cache and invalidate the I-cache between the two; Linux
 * gives user space the cacheflush system call for it (__ARM_NR_cacheflush,
 * what GCC's __builtin___clear_cache calls).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "checks.h"

/* `mov r0, #value` and `bx lr`, in ARM state. */
#define MOV_R0(value) (0xe3a00000u | ((value) & 0xffu))
#define BX_LR 0xe12fff1eu

typedef int (*generated)(void);

/* Writes a function returning `value` at `code` (two words). */
static void emit(uint32_t *code, unsigned value)
{
    code[0] = MOV_R0(value);
    code[1] = BX_LR;
}

static void sync_code(uint32_t *code)
{
    __builtin___clear_cache((char *)code, (char *)(code + 2));
}

static uint32_t *map_code(void)
{
    void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Code generated, synchronised, run; regenerated, synchronised, run; and
 * once more with the page made executable by mprotect after the stores. */
const char *check_jit_cacheflush(void)
{
    uint32_t *code = map_code();
    if (!code)
        return failf("mmap: %s", strerror(errno));
    const char *why = NULL;
    for (unsigned value = 1; value <= 3 && !why; value++) {
        emit(code, value);
        sync_code(code);
        int got = ((generated)code)();
        if (got != (int)value)
            why = failf("generated code %u returned %d", value, got);
    }
    if (!why && mprotect(code, PAGE, PROT_READ | PROT_WRITE) != 0)
        why = failf("mprotect: %s", strerror(errno));
    if (!why) {
        emit(code, 4);
        if (mprotect(code, PAGE, PROT_READ | PROT_EXEC) != 0)
            why = failf("mprotect: %s", strerror(errno));
    }
    if (!why) {
        sync_code(code);
        int got = ((generated)code)();
        if (got != 4)
            why = failf("code made executable by mprotect returned %d", got);
    }
    munmap(code, PAGE);
    return why;
}

/*
 * The negative control: code generated, synchronised and run; then
 * regenerated and run without the synchronisation. QEMU runs the new code
 * (it watches its translated pages), a real ARM926 or ARM11 the old one or
 * a mix: cachesan must report the fetch.
 */
const char *control_jit_no_cacheflush(void)
{
    uint32_t *code = map_code();
    if (!code)
        return failf("mmap: %s", strerror(errno));
    emit(code, 1);
    sync_code(code);
    int first = ((generated)code)();
    emit(code, 2);
    int second = ((generated)code)();
    munmap(code, PAGE);
    if (first != 1)
        return failf("the synchronised code returned %d", first);
    if (second != 2)
        return failf("the old code ran (%d): this control expects QEMU, which keeps code "
                     "coherent; on a real ARM926 or ARM11 it fails by design", second);
    return NULL;
}
