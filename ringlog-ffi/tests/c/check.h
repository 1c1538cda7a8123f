/* CHECK(call): runs a libringlog call that must succeed; on any other status prints where, the
 * call, its status and ringlog_last_error(), and exits 2. For the C test programs. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <ringlog.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != RINGLOG_OK) {                                                           \
            fprintf(stderr, "%s:%d: %s = %s: %s\n", __FILE__, __LINE__, #call,             \
                    ringlog_status_str(rc_), ringlog_last_error());                        \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

#endif
