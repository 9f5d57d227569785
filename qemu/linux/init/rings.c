/*
 * The facilities through which Linux shares ring memory with user space:
 * pages the kernel allocates, writes and reads through its own address
 * (the linear map, or vmalloc), and maps into the process at another.
 * On a VIVT cache (ARM926) the two addresses are two cache lines; Linux
 * 6.1 keeps neither coherent with the other for these rings: io_uring
 * does no cache maintenance at all (io_uring/io_uring.c, io_uring_mmap);
 * perf and BPF write through vmalloc and flush no alias of it
 * (kernel/events/ring_buffer.c rb_alloc, kernel/bpf/arraymap.c
 * array_map_mmap); AF_PACKET's flush_dcache_page cleans only the kernel's
 * linear alias of a page with no mapping (net/packet/af_packet.c
 * __packet_set_status, arch/arm/mm/flush.c). docs/cachesan-linux.md lists
 * what cachesan reports for each.
 *
 * In QEMU each check passes: QEMU models no cache. cachesan reports
 * what a real ARM926 would have read. Every check runs in a child process
 * of its own: perf and BPF maps share one anonymous inode, and a second
 * shared mapping of it in one process makes Linux map both uncached
 * (arch/arm/mm/fault-armv.c, make_coherent), which would hide the rest.
 * Each primes the user's line by reading it before it stores: the ARM926
 * allocates lines on reads only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checks.h"

/* io_uring: a NOP submitted through the SQ ring, its completion read from
 * the CQ ring. The kernel reads sq.tail and writes cq.tail through its
 * linear map (io_uring.h io_sqring_entries, io_commit_cqring). */
static const char *uring_body(void *arg)
{
    (void)arg;
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int fd = (int)syscall(__NR_io_uring_setup, 1, &params);
    if (fd < 0)
        return failf("io_uring_setup: %s", strerror(errno));
    size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    size_t ring_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
    char *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqe = mmap(NULL, sizeof *sqe * params.sq_entries, PROT_READ | PROT_WRITE,
                                    MAP_SHARED, fd, IORING_OFF_SQES);
    if (ring == MAP_FAILED || sqe == MAP_FAILED)
        return failf("io_uring mmap: %s", strerror(errno));
    volatile unsigned *sq_tail = (void *)(ring + params.sq_off.tail);
    volatile unsigned *sq_array = (void *)(ring + params.sq_off.array);
    volatile unsigned *cq_tail = (void *)(ring + params.cq_off.tail);
    struct io_uring_cqe *cqes = (void *)(ring + params.cq_off.cqes);
    unsigned tail = *sq_tail;
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_NOP;
    sqe->user_data = 0xa5a5;
    sq_array[tail & *(unsigned *)(ring + params.sq_off.ring_mask)] = 0;
    *sq_tail = tail + 1;
    /* to_submit 1, no IORING_ENTER_GETEVENTS: it never waits. */
    long submitted = syscall(__NR_io_uring_enter, fd, 1, 0, 0, NULL, 0);
    if (submitted != 1)
        return failf("io_uring_enter submitted %ld, expected 1 (%s)", submitted, strerror(errno));
    if (*cq_tail != 1)
        return failf("cq.tail is %u after one NOP, expected 1", *cq_tail);
    if (cqes[0].user_data != 0xa5a5 || cqes[0].res != 0)
        return failf("the completion has user_data %#llx res %d",
                     (unsigned long long)cqes[0].user_data, cqes[0].res);
    return NULL;
}

const char *check_io_uring(void)
{
    return in_child(uring_body, NULL, "io_uring");
}

/* perf: a software event's ring, written by the kernel through vmalloc
 * (ARM selects PERF_USE_VMALLOC) when the task renames itself. */
static const char *perf_body(void *arg)
{
    (void)arg;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_DUMMY;
    attr.comm = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    int fd = (int)syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd < 0)
        return failf("perf_event_open: %s", strerror(errno));
    struct perf_event_mmap_page *page =
        mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED)
        return failf("perf mmap: %s", strerror(errno));
    volatile uint64_t *head = &page->data_head;
    uint64_t before = *head;
    prctl(PR_SET_NAME, "vacmm-ring");
    uint64_t after = *head;
    if (after <= before)
        return failf("perf data_head stayed %llu after a PERF_RECORD_COMM",
                     (unsigned long long)after);
    const struct perf_event_header *record = (const void *)((const char *)page + PAGE);
    if (record->type != PERF_RECORD_COMM)
        return failf("the first record has type %u, expected PERF_RECORD_COMM", record->type);
    return NULL;
}

const char *check_perf_ring(void)
{
    return in_child(perf_body, NULL, "perf");
}

/* AF_PACKET: a TPACKET_V2 transmit ring on the loopback device. The user
 * marks frame 0 for sending; the kernel reads its status through its
 * linear map (af_packet.c __packet_get_status). */
static const char *packet_body(void *arg)
{
    (void)arg;
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (s < 0)
        return failf("socket(AF_PACKET): %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return failf("SIOCGIFFLAGS lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        return failf("SIOCSIFFLAGS lo: %s", strerror(errno));
    int version = TPACKET_V2;
    if (setsockopt(s, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
        return failf("PACKET_VERSION: %s", strerror(errno));
    struct tpacket_req req = {
        .tp_block_size = PAGE, .tp_block_nr = 1, .tp_frame_size = 2048, .tp_frame_nr = 2};
    if (setsockopt(s, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) != 0)
        return failf("PACKET_TX_RING: %s", strerror(errno));
    char *ring = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    if (ring == MAP_FAILED)
        return failf("packet mmap: %s", strerror(errno));
    struct sockaddr_ll ll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = 1};
    if (bind(s, (struct sockaddr *)&ll, sizeof ll) != 0)
        return failf("bind lo: %s", strerror(errno));
    /* Both frames, four rounds: each round reads the frame's status (the
     * user's line is then resident), fills the frame and sends it. */
    for (unsigned round = 0; round < 4; round++) {
        for (unsigned i = 0; i < req.tp_frame_nr; i++) {
            char *base = ring + i * req.tp_frame_size;
            volatile struct tpacket2_hdr *frame = (void *)base;
            if (frame->tp_status != TP_STATUS_AVAILABLE)
                return failf("round %u: frame %u's status is %#x before sending", round, i,
                             frame->tp_status);
            /* TPACKET_V2's data starts at tp_hdrlen - sizeof(sockaddr_ll). */
            unsigned char *data =
                (unsigned char *)base + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
            memset(data, 0xff, 12);
            data[12] = 0x88;
            data[13] = 0xb5; /* the local experimental EtherType */
            memset(data + 14, (int)(round * 2 + i), 46);
            frame->tp_len = 60;
            frame->tp_status = TP_STATUS_SEND_REQUEST;
            ssize_t sent = send(s, NULL, 0, 0);
            if (sent != 60)
                return failf("round %u: send sent %zd bytes of frame %u, expected 60 (%s)", round,
                             sent, i, strerror(errno));
        }
    }
    return NULL;
}

const char *check_packet_ring(void)
{
    return in_child(packet_body, NULL, "af_packet");
}

/* BPF: an array map the process maps (BPF_F_MMAPABLE); the kernel's
 * lookups and updates go through its vmalloc address
 * (kernel/bpf/arraymap.c). */
static long bpf(int command, union bpf_attr *attr)
{
    return syscall(__NR_bpf, command, attr, sizeof *attr);
}

static const char *bpf_body(void *arg)
{
    (void)arg;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 8;
    attr.max_entries = 512;
    attr.map_flags = BPF_F_MMAPABLE;
    int map = (int)bpf(BPF_MAP_CREATE, &attr);
    if (map < 0)
        return failf("BPF_MAP_CREATE: %s", strerror(errno));
    volatile uint64_t *values = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, map, 0);
    if (values == MAP_FAILED)
        return failf("bpf mmap: %s", strerror(errno));
    /* User to kernel: a store through the mapping, a lookup. */
    uint64_t primed = values[0];
    values[0] = primed + 0x1122334455667788ull;
    uint32_t key = 0;
    uint64_t value = 0;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map;
    attr.key = (uintptr_t)&key;
    attr.value = (uintptr_t)&value;
    if (bpf(BPF_MAP_LOOKUP_ELEM, &attr) != 0)
        return failf("BPF_MAP_LOOKUP_ELEM: %s", strerror(errno));
    if (value != 0x1122334455667788ull)
        return failf("the kernel's lookup read %#llx", (unsigned long long)value);
    /* Kernel to user: an update, a load through the mapping. */
    uint64_t before = values[8];
    key = 8;
    value = 0x99aabbccddeeff00ull;
    attr.flags = BPF_ANY;
    if (bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0)
        return failf("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
    if (before != 0 || values[8] != 0x99aabbccddeeff00ull)
        return failf("the mapping reads %#llx after the kernel's update",
                     (unsigned long long)values[8]);
    return NULL;
}

const char *check_bpf_array(void)
{
    return in_child(bpf_body, NULL, "bpf");
}
