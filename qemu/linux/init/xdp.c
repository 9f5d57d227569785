/*
 * AF_XDP: the fifth facility through which Linux shares ring memory with
 * user space (docs/cachesan-linux.md). The kernel allocates each ring with
 * __get_free_pages and maps it into the process with remap_pfn_range
 * (net/xdp/xsk_queue.c xskq_create, net/xdp/xsk.c xsk_mmap); it reads and
 * writes producer and consumer through its linear map, the process through
 * its mapping, and net/xdp/ does no cache maintenance. The packet buffers
 * (the UMEM) are the process's own pages, which the kernel vmaps
 * (net/xdp/xdp_umem.c xdp_umem_addr_map) and reads in copy mode through
 * that second address.
 *
 * One frame is sent on the loopback device in copy mode: the process
 * writes it into the UMEM, a descriptor into the TX ring and moves the TX
 * producer; sendto() makes the kernel read the ring, transmit a copy and
 * post the frame's address to the completion ring. In QEMU it passes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* Entries of each ring (a power of two). */
#define RING 4u
/* The UMEM: four frames of 2 KiB in two pages. */
#define FRAME 2048u
#define UMEM_BYTES (2 * PAGE)

static const char *xdp_body(void *arg)
{
    (void)arg;
    int s = socket(AF_XDP, SOCK_RAW, 0);
    if (s < 0)
        return failf("socket(AF_XDP): %s", strerror(errno));
    /* The loopback device, up (the AF_PACKET check may not have run);
     * the kernel has no IPv4, so the ioctl goes through a packet socket. */
    int ctl = socket(AF_PACKET, SOCK_RAW, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ctl < 0 || ioctl(ctl, SIOCGIFFLAGS, &ifr) != 0)
        return failf("SIOCGIFFLAGS lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(ctl, SIOCSIFFLAGS, &ifr) != 0)
        return failf("SIOCSIFFLAGS lo: %s", strerror(errno));
    close(ctl);

    unsigned char *umem =
        mmap(NULL, UMEM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem == MAP_FAILED)
        return failf("umem mmap: %s", strerror(errno));
    memset(umem, 0, UMEM_BYTES);
    struct xdp_umem_reg reg = {
        .addr = (uintptr_t)umem, .len = UMEM_BYTES, .chunk_size = FRAME, .headroom = 0};
    if (setsockopt(s, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0)
        return failf("XDP_UMEM_REG: %s", strerror(errno));
    unsigned entries = RING;
    if (setsockopt(s, SOL_XDP, XDP_UMEM_FILL_RING, &entries, sizeof entries) != 0 ||
        setsockopt(s, SOL_XDP, XDP_UMEM_COMPLETION_RING, &entries, sizeof entries) != 0 ||
        setsockopt(s, SOL_XDP, XDP_TX_RING, &entries, sizeof entries) != 0)
        return failf("XDP ring sizes: %s", strerror(errno));
    struct xdp_mmap_offsets off;
    socklen_t off_len = sizeof off;
    if (getsockopt(s, SOL_XDP, XDP_MMAP_OFFSETS, &off, &off_len) != 0)
        return failf("XDP_MMAP_OFFSETS: %s", strerror(errno));
    /* The completion ring's offset is above 4 GiB: mmap64 (mmap2 takes
     * the offset in pages). */
    char *tx = mmap64(NULL, off.tx.desc + RING * sizeof(struct xdp_desc), PROT_READ | PROT_WRITE,
                      MAP_SHARED, s, XDP_PGOFF_TX_RING);
    char *cq = mmap64(NULL, off.cr.desc + RING * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                      MAP_SHARED, s, XDP_UMEM_PGOFF_COMPLETION_RING);
    if (tx == MAP_FAILED || cq == MAP_FAILED)
        return failf("XDP ring mmap: %s", strerror(errno));
    struct sockaddr_xdp sxdp = {.sxdp_family = AF_XDP,
                                .sxdp_flags = XDP_COPY,
                                .sxdp_ifindex = if_nametoindex("lo"),
                                .sxdp_queue_id = 0};
    if (bind(s, (struct sockaddr *)&sxdp, sizeof sxdp) != 0)
        return failf("bind AF_XDP to lo in copy mode: %s", strerror(errno));

    volatile uint32_t *tx_producer = (void *)(tx + off.tx.producer);
    volatile uint32_t *tx_consumer = (void *)(tx + off.tx.consumer);
    struct xdp_desc *tx_desc = (void *)(tx + off.tx.desc);
    volatile uint32_t *cq_producer = (void *)(cq + off.cr.producer);
    volatile uint64_t *cq_addr = (void *)(cq + off.cr.desc);
    /* Read first: the ARM926 allocates lines on reads only. */
    uint32_t produced = *tx_producer;
    uint32_t completed = *cq_producer;
    if (produced != 0 || completed != 0 || *tx_consumer != 0)
        return failf("fresh rings read producer %u, completions %u", produced, completed);
    /* One Ethernet frame in UMEM frame 1: broadcast, the local
     * experimental EtherType, 46 bytes of payload. Its lines are read
     * first, so that the process's stores stay in its own lines (sets 64
     * and 65 of the ARM926's D-cache): the kernel copies the frame through
     * its vmap of the UMEM. The rings' producers are at offset 0 of their
     * pages, in set 0, where everything page-aligned lands: the send path
     * evicts the process's line of them before the kernel reads. */
    unsigned char *frame = umem + FRAME;
    unsigned primed = 0;
    for (unsigned i = 0; i < 64; i += 4)
        primed += ((volatile unsigned char *)frame)[i];
    if (primed != 0)
        return failf("the UMEM frame reads %u before it is written", primed);
    memset(frame, 0xff, 12);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    memset(frame + 14, 0x5a, 46);
    tx_desc[0].addr = FRAME;
    tx_desc[0].len = 60;
    tx_desc[0].options = 0;
    *tx_producer = produced + 1;
    if (sendto(s, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0)
        return failf("sendto: %s", strerror(errno));
    if (*tx_consumer != 1)
        return failf("the TX consumer is %u after sending one frame", *tx_consumer);
    if (*cq_producer != 1 || cq_addr[0] != FRAME)
        return failf("the completion ring holds %u entries, the first %#llx", *cq_producer,
                     (unsigned long long)cq_addr[0]);
    return NULL;
}

const char *check_xdp_ring(void)
{
    return in_child(xdp_body, NULL, "af_xdp");
}
