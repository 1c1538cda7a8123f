/* Producers writing through libringlog into a ring a real drain consumes.
 *
 *   producers RING fork|threads N RECORDS
 *
 * Opens RING once, then runs N producers (ids 1..N), each writing RECORDS records: forked
 * child processes sharing the handle opened before fork(), or threads sharing it. Records go
 * in turn through ringlog_write, ringlog_write_record (INFO, target "c.producer") and a claim
 * filled in two pieces; every 50th is preceded by a claim that is aborted (it must never
 * appear). Each producer prints "producer ID pid PID tid TID" so the test can check every
 * record carries its writer's pid and tid. Exits non-zero on any failure. */
#define _GNU_SOURCE
#include "records.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ringlog.h>
#include "check.h"

static ringlog_writer *w;
static unsigned long long records;

static void produce(unsigned id) {
    static __thread char buf[8192];
    printf("producer %u pid %d tid %ld\n", id, (int)getpid(), (long)syscall(SYS_gettid));
    fflush(stdout);
    for (unsigned long long seq = 0; seq < records; seq++) {
        size_t len = record(id, seq, buf);
        if (seq % 50 == 7) {
            CHECK(ringlog_claim(w, RINGLOG_LEVEL_ERROR, 64));
            CHECK(ringlog_claim_write(w, "ABORTED", 7));
            CHECK(ringlog_abort(w));
        }
        switch (seq % 3) {
        case 0:
            CHECK(ringlog_write(w, buf, len));
            break;
        case 1:
            CHECK(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "c.producer", 10, buf, len));
            break;
        default: {
            size_t left = 0;
            CHECK(ringlog_claim(w, RINGLOG_LEVEL_WARN, len + 100));
            CHECK(ringlog_claim_write(w, buf, len / 2));
            CHECK(ringlog_claim_write(w, buf + len / 2, len - len / 2));
            CHECK(ringlog_claim_remaining(w, &left));
            if (left != 100) {
                fprintf(stderr, "claim remaining %zu, expected 100\n", left);
                exit(2);
            }
            CHECK(ringlog_commit(w));
        }
        }
    }
}

static void *thread_main(void *arg) {
    produce((unsigned)(uintptr_t)arg);
    return NULL;
}

static void expect_stats(unsigned long long written) {
    struct ringlog_stats stats;
    stats.size = sizeof stats;
    CHECK(ringlog_stats(w, &stats));
    if (stats.written != written || stats.dropped != 0) {
        fprintf(stderr, "pid %d: stats written %llu dropped %llu, expected %llu and 0\n",
                (int)getpid(), (unsigned long long)stats.written,
                (unsigned long long)stats.dropped, written);
        exit(3);
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: producers RING fork|threads N RECORDS\n");
        return 64;
    }
    unsigned n = (unsigned)atoi(argv[3]);
    records = strtoull(argv[4], NULL, 10);
    CHECK(ringlog_open(argv[1], &w));
    bool alive = false;
    CHECK(ringlog_drain_alive(w, &alive));
    if (!alive) {
        fprintf(stderr, "no drain holds ring %s\n", argv[1]);
        return 4;
    }
    int failed = 0;
    if (strcmp(argv[2], "fork") == 0) {
        pid_t pids[64];
        for (unsigned i = 0; i < n && i < 64; i++) {
            fflush(stdout);
            pids[i] = fork();
            if (pids[i] < 0) {
                perror("fork");
                return 5;
            }
            if (pids[i] == 0) {
                produce(i + 1);
                /* The child's counts start at zero after fork(). */
                expect_stats(records);
                ringlog_close(w);
                exit(0);
            }
        }
        for (unsigned i = 0; i < n && i < 64; i++) {
            int status = 0;
            if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0) {
                fprintf(stderr, "producer %u failed (status %#x)\n", i + 1, status);
                failed = 1;
            }
        }
        expect_stats(0);
    } else {
        pthread_t threads[64];
        for (unsigned i = 0; i < n && i < 64; i++)
            if (pthread_create(&threads[i], NULL, thread_main, (void *)(uintptr_t)(i + 1)) != 0)
                return 5;
        for (unsigned i = 0; i < n && i < 64; i++)
            pthread_join(threads[i], NULL);
        expect_stats(records * n);
    }
    ringlog_close(w);
    return failed;
}
