// An experiment, not part of ringlog: what a producer's copy of one 64 KiB payload costs when the
// ring lines it writes were last read by a consumer on the other vCPU, as ringlog's drain reads
// them in its writev. It asks whether any copy routine, ring size or page size brings that copy
// under issue 18's producer target at 64 KiB (0.2x O_APPEND's CPU a record: 3.2-3.8 us on this
// machine). Results and what they mean: benches/HISTORY.md, "The 64 KiB copy" (twenty-first
// session).
//
// A producer thread on CPU 0 copies RECORDS payloads of 64 KiB into SLOTS slots of a shared
// mapping (a slot's payload starts 40 bytes in, as after ringlog's frame header); a consumer
// thread on CPU 1 takes up to 16 filled slots at a time and either writes them to a file with
// one writev (SINK=file, as the drain does) or copies them into a 1 MiB buffer (SINK=memory, no
// kernel), then frees them. The producer waits for a free slot by spinning. Only the copy is
// timed (CLOCK_MONOTONIC around each one; the thread is pinned and alone on its CPU). Before and
// after each run the program measures how long a cache line takes to move between CPUs 0 and 1,
// as ringlog-bench prints it: ~15 ns is two hyperthreads of one core, ~35-50 ns two cores
// sharing an L3, ~160-200 ns two L3s apart. The host chooses, and changes it between runs.
//
// Copy routines: memcpy (the C library's; `rep movsb` for 64 KiB here), rep movsb, a 32-byte
// AVX2 loop, the same loop with prefetchw 1 KiB ahead, 16-byte streaming stores then sfence.
//
//   cc -O2 -pthread -o copy_into_read_lines benches/experiments/copy_into_read_lines.c
//   ./copy_into_read_lines ROUNDS RECORDS SLOTS SINK PAGES
//   SINK: file (a new file in /tmp) or memory; PAGES: small (shared 4 KiB pages) or huge
//   (private, madvise(MADV_HUGEPAGE); threads share it). Example: ./copy_into_read_lines 8 2048
//   63 file small
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD (64u << 10)
#define SLOT_BYTES (PAYLOAD + 64)
#define HEADER 40
#define BATCH_MAX 16
#define MEMORY_SINK (1u << 20)

static uint8_t *ring;
static unsigned slots, batch;
static uint64_t records;
static int sink_is_file, fd;
static _Atomic uint64_t filled, freed;
static _Atomic uint64_t ball __attribute__((aligned(64)));

static double ns(const struct timespec *a, const struct timespec *b) {
    return (b->tv_sec - a->tv_sec) * 1e9 + (b->tv_nsec - a->tv_nsec);
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
        fprintf(stderr, "cannot pin to CPU %d\n", cpu);
        exit(1);
    }
}

static void copy_rep_movsb(uint8_t *d, const uint8_t *s, size_t n) {
    asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n)::"memory");
}

__attribute__((target("avx2,prfchw"))) static void copy_avx2(uint8_t *d, const uint8_t *s, size_t n,
                                                             size_t prefetch_ahead) {
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        if (prefetch_ahead && i + prefetch_ahead < n) {
            _m_prefetchw(d + i + prefetch_ahead);
            _m_prefetchw(d + i + prefetch_ahead + 64);
        }
        __m256i a = _mm256_loadu_si256((const void *)(s + i));
        __m256i b = _mm256_loadu_si256((const void *)(s + i + 32));
        __m256i c = _mm256_loadu_si256((const void *)(s + i + 64));
        __m256i e = _mm256_loadu_si256((const void *)(s + i + 96));
        _mm256_storeu_si256((void *)(d + i), a);
        _mm256_storeu_si256((void *)(d + i + 32), b);
        _mm256_storeu_si256((void *)(d + i + 64), c);
        _mm256_storeu_si256((void *)(d + i + 96), e);
    }
    memcpy(d + i, s + i, n - i);
}

// Plain bytes up to a 16-byte boundary, streaming stores, the rest plain, then sfence.
static void copy_streaming(uint8_t *d, const uint8_t *s, size_t n) {
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    memcpy(d, s, head);
    size_t i = head;
    for (; i + 16 <= n; i += 16)
        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
    memcpy(d + i, s + i, n - i);
    _mm_sfence();
}

enum { MEMCPY, REP_MOVSB, AVX2, AVX2_PREFETCHW, STREAMING, ROUTINES };
static const char *routine_names[ROUTINES] = {"memcpy", "rep-movsb", "avx2", "avx2+prefetchw",
                                              "streaming"};

static void copy_with(int routine, uint8_t *d, const uint8_t *s, size_t n) {
    switch (routine) {
    case MEMCPY: memcpy(d, s, n); break;
    case REP_MOVSB: copy_rep_movsb(d, s, n); break;
    case AVX2: copy_avx2(d, s, n, 0); break;
    case AVX2_PREFETCHW: copy_avx2(d, s, n, 1024); break;
    case STREAMING: copy_streaming(d, s, n); break;
    }
}

static uint8_t *payload_of(uint64_t record) {
    return ring + (record % slots) * SLOT_BYTES + HEADER;
}

static void *consume(void *unused) {
    (void)unused;
    pin(1);
    static uint8_t *memory_sink;
    if (!memory_sink) {
        memory_sink = aligned_alloc(4096, MEMORY_SINK);
        memset(memory_sink, 0, MEMORY_SINK);
    }
    size_t sink_at = 0, in_file = 0;
    for (uint64_t next = 0; next < records;) {
        uint64_t have;
        while ((have = atomic_load_explicit(&filled, memory_order_acquire)) == next)
            _mm_pause();
        uint64_t upto = have < next + batch ? have : next + batch;
        if (sink_is_file) {
            struct iovec iov[BATCH_MAX];
            for (uint64_t r = next; r < upto; r++)
                iov[r - next] = (struct iovec){payload_of(r), PAYLOAD};
            ssize_t want = (ssize_t)(upto - next) * PAYLOAD;
            if (writev(fd, iov, (int)(upto - next)) != want) {
                perror("writev");
                exit(1);
            }
            in_file += want;
            if (in_file >= (256u << 20)) {
                if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET)) {
                    perror("truncate");
                    exit(1);
                }
                in_file = 0;
            }
        } else {
            for (uint64_t r = next; r < upto; r++) {
                memcpy(memory_sink + sink_at, payload_of(r), PAYLOAD);
                sink_at = (sink_at + PAYLOAD) % MEMORY_SINK;
            }
        }
        next = upto;
        atomic_store_explicit(&freed, next, memory_order_release);
    }
    return 0;
}

static void *bounce(void *unused) {
    (void)unused;
    pin(1);
    for (uint64_t i = 1; i < 200000; i += 2) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != i)
            ;
        atomic_store_explicit(&ball, i + 1, memory_order_release);
    }
    return 0;
}

// Nanoseconds one cache line takes to move between CPUs 0 and 1 (the caller is on CPU 0).
static double line_move_ns(void) {
    atomic_store(&ball, 0);
    pthread_t other;
    pthread_create(&other, 0, bounce, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < 200000; i += 2) {
        atomic_store_explicit(&ball, i + 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != i + 2)
            ;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(other, 0);
    return ns(&t0, &t1) / 200000.0;
}

static uint8_t *map_ring(int huge) {
    size_t two_mib = 2u << 20;
    size_t len = ((size_t)SLOT_BYTES * slots + two_mib - 1) & ~(two_mib - 1);
    if (!huge) {
        void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
                       -1, 0);
        return p == MAP_FAILED ? 0 : p;
    }
    uint8_t *p = mmap(0, len + two_mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)p + two_mib - 1) & ~(uintptr_t)(two_mib - 1));
    if (madvise(aligned, len, MADV_HUGEPAGE))
        perror("madvise(MADV_HUGEPAGE)");
    memset(aligned, 0, len);
    return aligned;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s ROUNDS RECORDS SLOTS file|memory small|huge\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]);
    records = strtoull(argv[2], 0, 10);
    slots = (unsigned)atoi(argv[3]);
    sink_is_file = strcmp(argv[4], "file") == 0;
    int huge = strcmp(argv[5], "huge") == 0;
    if (slots < 2 || records == 0 || rounds < 1) {
        fprintf(stderr, "need ROUNDS >= 1, RECORDS >= 1, SLOTS >= 2\n");
        return 2;
    }
    batch = slots / 2 < BATCH_MAX ? slots / 2 : BATCH_MAX;
    ring = map_ring(huge);
    if (!ring) {
        perror("mmap");
        return 1;
    }
    char path[] = "/tmp/copy_into_read_lines.XXXXXX";
    fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(path);
    uint8_t *source = aligned_alloc(4096, PAYLOAD + 4096);
    memset(source, 'x', PAYLOAD + 4096);
    pin(0);
    printf("64 KiB copies into %u slots (%.1f MiB), sink %s, %s pages; ns per copy, mean of %llu\n",
           slots, slots * (double)SLOT_BYTES / (1 << 20), argv[4], argv[5],
           (unsigned long long)records);
    for (int round = 0; round < rounds; round++) {
        // Each round starts the routines at a different one, so none always follows another.
        for (int k = 0; k < ROUTINES; k++) {
            int routine = (round + k) % ROUTINES;
            double move_before = line_move_ns();
            atomic_store(&filled, 0);
            atomic_store(&freed, 0);
            pthread_t consumer;
            pthread_create(&consumer, 0, consume, 0);
            double copying = 0;
            for (uint64_t r = 0; r < records; r++) {
                while (r >= atomic_load_explicit(&freed, memory_order_acquire) + slots)
                    _mm_pause();
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                copy_with(routine, payload_of(r), source + 8, PAYLOAD);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                copying += ns(&t0, &t1);
                atomic_store_explicit(&filled, r + 1, memory_order_release);
            }
            pthread_join(consumer, 0);
            double move_after = line_move_ns();
            printf("round %2d  %-15s %7.0f ns  line move %3.0f / %3.0f ns\n", round,
                   routine_names[routine], copying / records, move_before, move_after);
            fflush(stdout);
        }
    }
    return 0;
}
