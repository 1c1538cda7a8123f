// An experiment, not part of ringlog: what claiming small records from per-producer chunks
// would save against one CAS'd tail per record, on the machine as it is. Results and what they
// mean: benches/HISTORY.md, "Claims from per-producer chunks" (nineteenth session).
//
// Both variants run the same threads over one 4 MiB shared mapping: P producer threads each
// write R frames of 168 bytes (a 40-byte header like ringlog's, then 128 payload bytes) and one
// drain thread reads them in ring order, checks each producer's sequence numbers, and copies the
// payloads out as a batch would.
//   tail:  each frame is claimed with a CAS on the one tail (ringlog's claim today).
//   chunk: a producer claims CHUNK bytes from the tail at a time and then claims its frames
//          inside them through a cursor in the chunk's first line that only it and the drain
//          touch; it seals the chunk when the next frame does not fit. The drain reads a chunk's
//          frames up to the cursor, and seals an open chunk (so the producer moves on) when
//          claims wait behind it and its cursor has not moved for SEAL_US.
// A full ring and an empty one are waited on with sched_yield. Not modelled: time stamps,
// formatting, the output file, wake-ups, processes instead of threads, dead producers.
// Before and after each run the program measures how long a cache line takes to move between
// CPUs 0 and 1 (the placement of the two vCPUs, as ringlog-bench prints it).
//
//   cc -O2 -march=native -pthread -o chunk_claims benches/experiments/chunk_claims.c
//   ./chunk_claims ROUNDS RECORDS_PER_PRODUCER PRODUCERS PIN CHUNK_BYTES SEAL_US
//   PIN: 0 free, 1 producers alternately on CPUs 0 and 1, 2 producers on CPU 0 and the drain
//   on CPU 1. Example: ./chunk_claims 12 1000000 4 0 16384 20
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define CAP (4u << 20)
#define MASK (CAP - 1)
#define KEY 0x9e3779b97f4a7c15ull
#define HDR 40
#define PAY 128
#define SPAN (HDR + PAY)
#define CHUNK_HEADER 64
#define K_DATA 1ll
#define K_PAD 2ll
#define K_CHUNK 3ll
#define SEALED (1ull << 63)
#define NO_CHUNK UINT64_MAX

static unsigned char *ring;
static _Alignas(64) _Atomic uint64_t tail;
static _Alignas(64) _Atomic uint64_t head;
static _Alignas(64) _Atomic int go;
static int chunked, producers, pin;
static uint64_t per_producer, chunk_bytes, seal_ns;
static double producer_cpu[16];

static uint64_t ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}

static _Atomic uint64_t *word(uint64_t pos, int i) {
  return (_Atomic uint64_t *)(ring + ((pos + 8 * i) & MASK));
}

static int64_t word0(int64_t len, int64_t kind) { return len << 8 | kind; }

static void pin_to(int first, int last) {
  cpu_set_t s;
  CPU_ZERO(&s);
  for (int cpu = first; cpu <= last; cpu++) CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

// Reserves `span` bytes at the tail (padding first at a wrap); returns the frame's position.
static uint64_t claim_tail(uint64_t span, uint64_t *head_cache) {
  uint64_t t = atomic_load_explicit(&tail, memory_order_relaxed);
  for (;;) {
    uint64_t index = t & MASK, pad = index + span > CAP ? CAP - index : 0;
    uint64_t end = t + pad + span;
    if (end > *head_cache + CAP) {
      *head_cache = atomic_load_explicit(&head, memory_order_acquire);
      if (end > *head_cache + CAP) {
        sched_yield();
        t = atomic_load_explicit(&tail, memory_order_relaxed);
        continue;
      }
    }
    if (atomic_compare_exchange_weak_explicit(&tail, &t, end, memory_order_seq_cst,
                                              memory_order_relaxed)) {
      if (pad) {
        atomic_store_explicit(word(t, 0), word0(pad, K_PAD), memory_order_relaxed);
        atomic_store_explicit(word(t, 1), t ^ KEY, memory_order_release);
      }
      return t + pad;
    }
    __builtin_ia32_pause();
  }
}

// A frame inside the producer's chunk, or NO_CHUNK when it is sealed or full (then sealed).
static uint64_t claim_in_chunk(uint64_t chunk) {
  _Atomic uint64_t *cursor = word(chunk, 2);
  uint64_t cur = atomic_load_explicit(cursor, memory_order_relaxed);
  if (!(cur & SEALED) && cur + SPAN <= chunk_bytes &&
      atomic_compare_exchange_strong_explicit(cursor, &cur, cur + SPAN, memory_order_relaxed,
                                              memory_order_relaxed))
    return chunk + cur;
  if (!(cur & SEALED)) atomic_fetch_or_explicit(cursor, SEALED, memory_order_release);
  return NO_CHUNK;
}

// Claims a new chunk and its first frame; returns the chunk.
static uint64_t claim_chunk(uint64_t *head_cache) {
  uint64_t chunk = claim_tail(chunk_bytes, head_cache);
  atomic_store_explicit(word(chunk, 0), word0(chunk_bytes, K_CHUNK), memory_order_relaxed);
  atomic_store_explicit(word(chunk, 2), CHUNK_HEADER + SPAN, memory_order_relaxed);
  atomic_store_explicit(word(chunk, 1), chunk ^ KEY, memory_order_release);
  return chunk;
}

static void write_frame(uint64_t pos, const unsigned char *payload, uint64_t seq) {
  atomic_store_explicit(word(pos, 0), word0(-(int64_t)SPAN, K_DATA), memory_order_relaxed);
  atomic_store_explicit(word(pos, 1), pos ^ KEY, memory_order_release);
  atomic_store_explicit(word(pos, 2), seq, memory_order_relaxed);
  atomic_store_explicit(word(pos, 3), 1234, memory_order_relaxed);
  atomic_store_explicit(word(pos, 4), PAY, memory_order_relaxed);
  memcpy(ring + ((pos + HDR) & MASK), payload, PAY);
  atomic_store_explicit(word(pos, 0), word0(SPAN, K_DATA), memory_order_release);
}

static void *producer(void *arg) {
  long id = (long)arg;
  if (pin == 1) pin_to(id % 2, id % 2);
  if (pin == 2) pin_to(0, 0);
  unsigned char payload[PAY];
  memset(payload, 'a' + id, PAY);
  uint64_t head_cache = 0, chunk = NO_CHUNK;
  while (!atomic_load(&go)) {}
  uint64_t cpu0 = ns(CLOCK_THREAD_CPUTIME_ID);
  for (uint64_t seq = 0; seq < per_producer; seq++) {
    uint64_t pos;
    if (!chunked) {
      pos = claim_tail(SPAN, &head_cache);
    } else if (chunk == NO_CHUNK || (pos = claim_in_chunk(chunk)) == NO_CHUNK) {
      chunk = claim_chunk(&head_cache);
      pos = chunk + CHUNK_HEADER;
    }
    write_frame(pos, payload, seq);
  }
  producer_cpu[id] = (ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) * 1e-9;
  return 0;
}

static unsigned char out[1 << 20];
static uint64_t out_len, consumed, next_seq[16];

// The kind of the committed frame at `pos` (its span in *span), 0 if it is not committed yet.
// Data frames are copied out and their producer's sequence checked.
static int consume_frame(uint64_t pos, uint64_t *span) {
  if (atomic_load_explicit(word(pos, 1), memory_order_acquire) != (pos ^ KEY)) return 0;
  int64_t w0 = atomic_load_explicit(word(pos, 0), memory_order_acquire);
  if (w0 < 0) return 0;
  *span = w0 >> 8;
  int kind = w0 & 0xff;
  if (kind != K_DATA) return kind;
  uint64_t len = atomic_load_explicit(word(pos, 4), memory_order_relaxed);
  if (out_len + len > sizeof out) out_len = 0;
  memcpy(out + out_len, ring + ((pos + HDR) & MASK), len);
  int who = out[out_len] - 'a';
  uint64_t seq = atomic_load_explicit(word(pos, 2), memory_order_relaxed);
  if (seq != next_seq[who]) {
    fprintf(stderr, "producer %d: record %lu where %lu was due\n", who, seq, next_seq[who]);
    exit(1);
  }
  next_seq[who]++;
  out_len += len;
  consumed++;
  return kind;
}

// Reads the frames of the chunk at `chunk` up to its cursor until it is sealed or full.
static void consume_chunk(uint64_t chunk, uint64_t total) {
  _Atomic uint64_t *cursor = word(chunk, 2);
  uint64_t off = CHUNK_HEADER, stalled_since = 0;
  for (;;) {
    uint64_t cur = atomic_load_explicit(cursor, memory_order_acquire);
    uint64_t end = cur & ~SEALED, span;
    if (off < end) {
      if (consume_frame(chunk + off, &span)) {
        off += span;
        stalled_since = 0;
      } else {
        __builtin_ia32_pause();
      }
      continue;
    }
    if ((cur & SEALED) || end + SPAN > chunk_bytes || consumed >= total) return;
    // Open and read to its cursor: seal it once claims wait behind it and it has stalled.
    if (atomic_load_explicit(&tail, memory_order_relaxed) > chunk + chunk_bytes) {
      uint64_t now = ns(CLOCK_MONOTONIC);
      if (!stalled_since)
        stalled_since = now;
      else if (now - stalled_since > seal_ns)
        atomic_compare_exchange_strong_explicit(cursor, &cur, cur | SEALED, memory_order_acq_rel,
                                                memory_order_relaxed);
    }
    __builtin_ia32_pause();
  }
}

static void *drain(void *arg) {
  (void)arg;
  if (pin == 2) pin_to(1, 1);
  uint64_t h = 0, released = 0, total = per_producer * producers, span;
  while (consumed < total) {
    int kind = consume_frame(h, &span);
    if (kind == 0) {
      sched_yield();
      continue;
    }
    if (kind == K_CHUNK) consume_chunk(h, total);
    h += span;
    if (h - released >= 64 * 1024) {
      atomic_store_explicit(&head, h, memory_order_release);
      released = h;
    }
  }
  atomic_store_explicit(&head, h, memory_order_release);
  return 0;
}

static _Alignas(64) _Atomic uint64_t ball;

static void *pong(void *arg) {
  (void)arg;
  pin_to(1, 1);
  for (uint64_t i = 1; i < 20000; i += 2) {
    while (atomic_load(&ball) != i) {}
    atomic_store(&ball, i + 1);
  }
  return 0;
}

// One-way time of a cache line between CPUs 0 and 1, ns (10,000 round trips).
static double line_move_ns(void) {
  pin_to(0, 0);
  atomic_store(&ball, 0);
  pthread_t t;
  pthread_create(&t, 0, pong, 0);
  uint64_t t0 = ns(CLOCK_MONOTONIC);
  for (uint64_t i = 0; i < 20000; i += 2) {
    atomic_store(&ball, i + 1);
    while (atomic_load(&ball) != i + 2) {}
  }
  double one_way = (ns(CLOCK_MONOTONIC) - t0) / 20000.0;
  pthread_join(t, 0);
  pin_to(0, 1);
  return one_way;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s ROUNDS RECORDS_PER_PRODUCER PRODUCERS PIN CHUNK_BYTES SEAL_US\n",
            argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]);
  per_producer = atoll(argv[2]);
  producers = atoi(argv[3]);
  pin = atoi(argv[4]);
  chunk_bytes = atoll(argv[5]);
  seal_ns = atoll(argv[6]) * 1000;
  if (producers < 1 || producers > 16 || chunk_bytes < CHUNK_HEADER + SPAN ||
      CAP % chunk_bytes != 0) {
    fprintf(stderr, "1-16 producers; CHUNK_BYTES a power of two from 256 to 4 MiB\n");
    return 2;
  }
  ring = mmap(0, CAP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (ring == MAP_FAILED) return perror("mmap"), 1;
  for (int r = 0; r < rounds; r++)
    for (chunked = 0; chunked < 2; chunked++) {
      memset(ring, 0, CAP);
      memset(next_seq, 0, sizeof next_seq);
      atomic_store(&tail, 0);
      atomic_store(&head, 0);
      atomic_store(&go, 0);
      consumed = out_len = 0;
      double before = line_move_ns();
      pthread_t threads[16], drainer;
      for (long i = 0; i < producers; i++) pthread_create(&threads[i], 0, producer, (void *)i);
      pthread_create(&drainer, 0, drain, 0);
      uint64_t t0 = ns(CLOCK_MONOTONIC);
      atomic_store(&go, 1);
      for (int i = 0; i < producers; i++) pthread_join(threads[i], 0);
      pthread_join(drainer, 0);
      double secs = (ns(CLOCK_MONOTONIC) - t0) * 1e-9, after = line_move_ns(), cpu = 0;
      for (int i = 0; i < producers; i++) cpu += producer_cpu[i];
      uint64_t records = per_producer * producers;
      printf("%s %6.2f M rec/s  producers %5.1f ns/rec  move %3.0f/%3.0f ns\n",
             chunked ? "chunk" : "tail ", records / secs / 1e6, cpu / records * 1e9, before, after);
      fflush(stdout);
    }
  return 0;
}
