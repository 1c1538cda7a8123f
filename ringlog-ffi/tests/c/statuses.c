/* Every status libringlog returns for bad input, checked from C.
 *
 *   statuses RING DIR [SMALLFS]
 *
 * RING is a ring name no one uses (the program derives more names from it); DIR is a scratch
 * directory holding `not-a-ring` (a file that is not a ring) and `other-version` (a ring with
 * another layout version), prepared by the test; SMALLFS, if given, is a directory on a filesystem too small for a
 * 1 MiB ring (RINGLOG_NO_SPACE). For each case: the status, a non-empty
 * ringlog_last_error(), and outputs left untouched. Prints "checked NAME" for each status it
 * saw as expected; exits non-zero at the first surprise. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ringlog.h>

static int failures;

static void expect_at(int line, const char *what, int got, int want) {
    const char *message = ringlog_last_error();
    if (got != want) {
        fprintf(stderr, "line %d: %s: got %s, want %s (last error: %s)\n", line, what,
                ringlog_status_str(got), ringlog_status_str(want), message);
        failures++;
        return;
    }
    if (want != RINGLOG_OK && message[0] == '\0') {
        fprintf(stderr, "line %d: %s: %s with an empty last error\n", line, what,
                ringlog_status_str(got));
        failures++;
        return;
    }
    if (want != RINGLOG_OK) printf("checked %s: %s: %s\n", ringlog_status_str(want), what, message);
}
#define EXPECT(call, want) expect_at(__LINE__, #call, (call), (want))

static ringlog_writer *const UNTOUCHED = (ringlog_writer *)(uintptr_t)0x5a5a;

/* Opens `name` with `opts`, expecting `want`, and checks `out` is written only on success. */
static ringlog_writer *open_expect(int line, const char *name, const ringlog_options *opts,
                                   int want) {
    ringlog_writer *w = UNTOUCHED;
    int rc = opts ? ringlog_open_with(name, opts, &w) : ringlog_open(name, &w);
    expect_at(line, name ? name : "(null)", rc, want);
    if (want != RINGLOG_OK && w != UNTOUCHED) {
        fprintf(stderr, "line %d: the handle was written on failure\n", line);
        failures++;
    }
    return want == RINGLOG_OK ? w : NULL;
}

static ringlog_options small_ring(const char *path, uint32_t policy) {
    ringlog_options o;
    ringlog_options_init(&o);
    o.capacity = 64 * 1024;
    o.policy = policy;
    o.path = path;
    return o;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: statuses RING DIR [SMALLFS]\n");
        return 64;
    }
    const char *ring = argv[1], *dir = argv[2];
    char path[4096], name[256];

    /* RINGLOG_NULL_ARGUMENT, and NULL handles that are harmless. */
    ringlog_writer *w = UNTOUCHED;
    EXPECT(ringlog_open(NULL, &w), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_open(ring, NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_open_with(ring, NULL, &w), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_options_init(NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_write(NULL, "x", 1), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_write_record(NULL, RINGLOG_LEVEL_INFO, "t", 1, "x", 1), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_stats(NULL, NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_drain_alive(NULL, NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_claim(NULL, 0, 1), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_claim_write(NULL, "x", 1), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_commit(NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_abort(NULL), RINGLOG_NULL_ARGUMENT);
    ringlog_close(NULL);
    if (w != UNTOUCHED) {
        fprintf(stderr, "the handle was written on failure\n");
        failures++;
    }

    /* RINGLOG_BAD_NAME. */
    char long_name[80];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    open_expect(__LINE__, "a/b", NULL, RINGLOG_BAD_NAME);
    open_expect(__LINE__, "", NULL, RINGLOG_BAD_NAME);
    open_expect(__LINE__, long_name, NULL, RINGLOG_BAD_NAME);
    open_expect(__LINE__, "caf\xc3", NULL, RINGLOG_BAD_NAME);

    /* RINGLOG_NOT_FOUND: create off, no ring. */
    ringlog_options o;
    EXPECT(ringlog_options_init(&o), RINGLOG_OK);
    o.create = 0;
    snprintf(name, sizeof name, "%s-absent", ring);
    open_expect(__LINE__, name, &o, RINGLOG_NOT_FOUND);

    /* RINGLOG_BAD_ARGUMENT: options out of range. */
    ringlog_options_init(&o);
    o.size = 0;
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.size = sizeof o - 8;
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    struct { ringlog_options o; uint64_t newer_field; } newer;
    ringlog_options_init(&newer.o);
    newer.o.size = sizeof newer;
    newer.newer_field = 1; /* a field from a newer header, set: refused */
    open_expect(__LINE__, ring, &newer.o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.policy = 9;
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.capacity = 3000; /* not a power of two */
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.mode = 0;
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.group = -5;
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);
    ringlog_options_init(&o);
    o.path = "";
    open_expect(__LINE__, ring, &o, RINGLOG_BAD_ARGUMENT);

    /* RINGLOG_NOT_A_RING and RINGLOG_VERSION_MISMATCH: files the test prepared. */
    snprintf(path, sizeof path, "%s/not-a-ring", dir);
    o = small_ring(path, RINGLOG_POLICY_DROP);
    o.create = 0;
    open_expect(__LINE__, "not-a-ring", &o, RINGLOG_NOT_A_RING);
    snprintf(path, sizeof path, "%s/other-version", dir);
    o = small_ring(path, RINGLOG_POLICY_DROP);
    o.capacity = 0;
    open_expect(__LINE__, "other-version", &o, RINGLOG_VERSION_MISMATCH);

    /* RINGLOG_NO_SPACE: a 1 MiB ring on a filesystem with less room. */
    if (argc == 4) {
        snprintf(path, sizeof path, "%s/ring", argv[3]);
        o = small_ring(path, RINGLOG_POLICY_DROP);
        o.capacity = 1024 * 1024;
        open_expect(__LINE__, "no-space", &o, RINGLOG_NO_SPACE);
    }

    /* RINGLOG_IO: a directory is no file to map. */
    o = small_ring(dir, RINGLOG_POLICY_DROP);
    open_expect(__LINE__, "a-directory", &o, RINGLOG_IO);

    /* A real ring of 64 KiB (max record 16 KiB) under the drop policy, with no drain. */
    snprintf(path, sizeof path, "%s/ring", dir);
    o = small_ring(path, RINGLOG_POLICY_DROP);
    w = open_expect(__LINE__, "small", &o, RINGLOG_OK);
    if (!w) return 1;

    /* RINGLOG_NOT_A_RING: it exists with another capacity than asked. */
    ringlog_options bigger = small_ring(path, RINGLOG_POLICY_DROP);
    bigger.capacity = 128 * 1024;
    open_expect(__LINE__, "small", &bigger, RINGLOG_NOT_A_RING);

    /* RINGLOG_PERMISSION: an unprivileged process and a 0600 ring of another user. */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        failures = 0;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            perror("setuid");
            _exit(10);
        }
        if (geteuid() != 0) chmod(path, 0); /* not root from the start: take our own access */
        ringlog_options as_other = small_ring(path, RINGLOG_POLICY_DROP);
        as_other.create = 0;
        open_expect(__LINE__, "small", &as_other, RINGLOG_PERMISSION);
        ringlog_close(w);
        fflush(stdout);
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the permission check failed in its child (status %#x)\n", status);
        failures++;
    }
    chmod(path, 0600);

    /* RINGLOG_BAD_ARGUMENT on a live handle. */
    EXPECT(ringlog_write_record(w, 9, "t", 1, "x", 1), RINGLOG_BAD_ARGUMENT);
    EXPECT(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "\xff", 1, "x", 1), RINGLOG_BAD_ARGUMENT);
    EXPECT(ringlog_claim(w, -1, 10), RINGLOG_BAD_ARGUMENT);
    EXPECT(ringlog_commit(w), RINGLOG_BAD_ARGUMENT);
    EXPECT(ringlog_abort(w), RINGLOG_BAD_ARGUMENT);
    EXPECT(ringlog_claim_write(w, "x", 1), RINGLOG_BAD_ARGUMENT);
    struct ringlog_stats stats;
    memset(&stats, 0x77, sizeof stats);
    stats.size = 8;
    EXPECT(ringlog_stats(w, &stats), RINGLOG_BAD_ARGUMENT);
    if (stats.written != 0x7777777777777777ULL) {
        fprintf(stderr, "stats written on failure\n");
        failures++;
    }
    EXPECT(ringlog_stats(w, NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_drain_alive(w, NULL), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_write(w, NULL, 1), RINGLOG_NULL_ARGUMENT);
    EXPECT(ringlog_write(w, NULL, 0), RINGLOG_OK); /* an empty record */

    /* RINGLOG_TOO_LARGE: above the max record, in every way of writing. */
    static char big[64 * 1024];
    memset(big, 'x', sizeof big);
    EXPECT(ringlog_write(w, big, 16 * 1024), RINGLOG_OK);
    EXPECT(ringlog_write(w, big, 16 * 1024 + 1), RINGLOG_TOO_LARGE);
    EXPECT(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "t", 1, big, 16 * 1024), RINGLOG_TOO_LARGE);
    EXPECT(ringlog_claim(w, RINGLOG_LEVEL_INFO, 16 * 1024 + 1), RINGLOG_TOO_LARGE);

    /* A claim: too much into it, RINGLOG_WOULD_DEADLOCK while it is open, then it commits. */
    EXPECT(ringlog_claim(w, RINGLOG_LEVEL_INFO, 10), RINGLOG_OK);
    EXPECT(ringlog_claim_write(w, big, 11), RINGLOG_TOO_LARGE);
    EXPECT(ringlog_claim_write(w, big, 10), RINGLOG_OK);
    EXPECT(ringlog_claim_write(w, big, 1), RINGLOG_TOO_LARGE);
    EXPECT(ringlog_write(w, "x", 1), RINGLOG_WOULD_DEADLOCK);
    EXPECT(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "t", 1, "x", 1), RINGLOG_WOULD_DEADLOCK);
    EXPECT(ringlog_claim(w, RINGLOG_LEVEL_INFO, 10), RINGLOG_WOULD_DEADLOCK);
    EXPECT(ringlog_commit(w), RINGLOG_OK);
    EXPECT(ringlog_commit(w), RINGLOG_BAD_ARGUMENT);

    /* RINGLOG_DROPPED: fill the ring (no drain), counted exactly. */
    unsigned long long written = 2, dropped = 0; /* the empty record and the 16 KiB one */
    for (int i = 0; i < 1000; i++) {
        int rc = ringlog_write(w, big, 1000);
        if (rc == RINGLOG_OK) written++;
        else if (rc == RINGLOG_DROPPED) dropped++;
        else EXPECT(rc, RINGLOG_DROPPED);
    }
    written++; /* the claim committed above */
    EXPECT(ringlog_write(w, big, 1000), RINGLOG_DROPPED);
    dropped++;
    EXPECT(ringlog_claim(w, RINGLOG_LEVEL_INFO, 1000), RINGLOG_DROPPED);
    dropped++;
    stats.size = sizeof stats;
    EXPECT(ringlog_stats(w, &stats), RINGLOG_OK);
    if (stats.written != written || stats.dropped != dropped || dropped < 3) {
        fprintf(stderr, "stats: written %llu dropped %llu, counted %llu and %llu\n",
                (unsigned long long)stats.written, (unsigned long long)stats.dropped, written,
                dropped);
        failures++;
    }
    bool alive = true;
    EXPECT(ringlog_drain_alive(w, &alive), RINGLOG_OK);
    if (alive) {
        fprintf(stderr, "a drain is alive on a ring none was started for\n");
        failures++;
    }

    /* RINGLOG_DROPPED after waiting: block for 20 ms on the full ring. */
    ringlog_options blocking = small_ring(path, RINGLOG_POLICY_BLOCK_FOR);
    blocking.block_for_ms = 20;
    ringlog_writer *b = open_expect(__LINE__, "small", &blocking, RINGLOG_OK);
    if (b) {
        EXPECT(ringlog_write(b, big, 1000), RINGLOG_DROPPED);
        stats.size = sizeof stats;
        EXPECT(ringlog_stats(b, &stats), RINGLOG_OK);
        if (stats.dropped != 1 || stats.blocked_ns == 0) {
            fprintf(stderr, "block-for stats: dropped %llu blocked %llu ns\n",
                    (unsigned long long)stats.dropped, (unsigned long long)stats.blocked_ns);
            failures++;
        }
        ringlog_close(b);
    }

    ringlog_close(w);
    printf("%s\n", failures ? "FAILED" : "all statuses as expected");
    return failures ? 1 : 0;
}
