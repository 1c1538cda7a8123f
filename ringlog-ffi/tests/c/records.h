/* The records the C test programs write: record `seq` of producer `id` is a pure function of
 * the two, so the Rust side regenerates it and compares bytes (tests/c_programs.rs, `record`).
 * Keep the two in step. */
#ifndef RECORDS_H
#define RECORDS_H

#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* Mostly short records, every 101st between 5000 and 7999 bytes. */
static size_t record_filler_len(unsigned id, unsigned long long seq) {
    if (seq % 101 == 100) return 5000 + (size_t)(seq % 3000);
    return (size_t)((seq * 131 + (unsigned long long)id * 17) % 400);
}

/* Writes record (id, seq) into buf (of at least 8100 bytes); returns its length. */
static size_t record(unsigned id, unsigned long long seq, char *buf) {
    int head = snprintf(buf, 64, "p=%u s=%llu ", id, seq);
    size_t len = (size_t)head, filler = record_filler_len(id, seq);
    for (size_t i = 0; i < filler; i++)
        buf[len++] = (char)('a' + (id * 7 + seq + i) % 26);
    return len;
}

#endif
