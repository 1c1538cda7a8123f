/* A process whose handle is closed while it lives on.
 *
 *   close_wait RING RECORDS
 *
 * Opens RING; this thread and a second one each write RECORDS records; once both have, the
 * handle is closed while both threads live on (the second waits on a pipe). Prints
 * "closed pid PID", then waits for its standard input to close before it exits, so the test
 * can look at the ring (ringlog-drain stat, a drain stopping) while the process is alive.
 * Exits non-zero on any failure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ringlog.h>
#include "check.h"

static ringlog_writer *w;
static unsigned long long records;
static int wrote[2], finish[2];

static void produce(const char *who) {
    char buf[64];
    for (unsigned long long seq = 0; seq < records; seq++) {
        int len = snprintf(buf, sizeof buf, "%s %llu", who, seq);
        CHECK(ringlog_write(w, buf, (size_t)len));
    }
}

static void *second_thread(void *arg) {
    (void)arg;
    char byte = 1;
    produce("second");
    if (write(wrote[1], &byte, 1) != 1)
        exit(3);
    /* Lives on, until the main thread closes the pipe. */
    while (read(finish[0], &byte, 1) > 0) {
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: close_wait RING RECORDS\n");
        return 64;
    }
    records = strtoull(argv[2], NULL, 10);
    if (pipe(wrote) != 0 || pipe(finish) != 0)
        return 5;
    CHECK(ringlog_open(argv[1], &w));
    pthread_t second;
    if (pthread_create(&second, NULL, second_thread, NULL) != 0)
        return 5;
    produce("main");
    char byte;
    if (read(wrote[0], &byte, 1) != 1)
        return 3;
    ringlog_close(w);
    printf("closed pid %d\n", (int)getpid());
    fflush(stdout);
    char sink[256];
    while (read(STDIN_FILENO, sink, sizeof sink) > 0) {
    }
    close(finish[1]);
    pthread_join(second, NULL);
    return 0;
}
