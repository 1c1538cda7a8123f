/* Writes records through libringlog between two marker syscalls, for strace to count what
 * happens in between.
 *
 *   syscalls RING RECORDS
 *
 * Creates RING with room for 200,000 records of 128 bytes, so no write finds it full, and
 * writes one record of each call first (a thread's first write attaches it, a few syscalls,
 * once). Then stat()s "/ringlog-c-syscalls-begin", writes RECORDS records (in turn through
 * ringlog_write and ringlog_write_record), and stat()s "/ringlog-c-syscalls-end": the two
 * markers bracket the records in an strace log. Exits non-zero on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ringlog.h>
#include "check.h"

static void mark(const char *path) {
    struct stat st;
    (void)stat(path, &st); /* fails: the path does not exist; the call is the marker */
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: syscalls RING RECORDS\n");
        return 64;
    }
    unsigned long long records = strtoull(argv[2], NULL, 10);
    struct ringlog_options options;
    CHECK(ringlog_options_init(&options));
    options.capacity = 32ull << 20;
    options.policy = RINGLOG_POLICY_DROP; /* a full ring would fail the run, never wait */
    ringlog_writer *w;
    CHECK(ringlog_open_with(argv[1], &options, &w));
    char record[128];
    memset(record, 'x', sizeof record);
    CHECK(ringlog_write(w, record, sizeof record));
    CHECK(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "c.app", 5, record, 96));
    mark("/ringlog-c-syscalls-begin");
    for (unsigned long long i = 0; i < records; i++) {
        if (i % 2 == 0)
            CHECK(ringlog_write(w, record, sizeof record));
        else
            CHECK(ringlog_write_record(w, RINGLOG_LEVEL_INFO, "c.app", 5, record, 96));
    }
    mark("/ringlog-c-syscalls-end");
    ringlog_close(w);
    return 0;
}
