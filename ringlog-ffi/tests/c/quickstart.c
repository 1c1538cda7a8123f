/* The README's "From C" quickstart, compiled by tests/install.rs against an installed
 * libringlog found through pkg-config. Ring name: argv[1], else "myservice". */
#include <ringlog.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *ring = argc > 1 ? argv[1] : "myservice";
    ringlog_writer *log;
    int rc = ringlog_open(ring, &log); /* creates the ring if no drain has yet */
    if (rc != RINGLOG_OK) {
        fprintf(stderr, "ringlog_open: %s: %s\n", ringlog_status_str(rc), ringlog_last_error());
        return 1;
    }
    const char *msg = "service started";
    rc = ringlog_write(log, msg, strlen(msg)); /* one record, whole or not at all */
    if (rc == RINGLOG_OK)
        rc = ringlog_write_record(log, RINGLOG_LEVEL_INFO, "quickstart", 10, "ready", 5);
    if (rc != RINGLOG_OK) /* RINGLOG_DROPPED: the ring was full; the drain logs the count */
        fprintf(stderr, "ringlog: %s: %s\n", ringlog_status_str(rc), ringlog_last_error());
    ringlog_close(log);
    return rc == RINGLOG_OK ? 0 : 1;
}
