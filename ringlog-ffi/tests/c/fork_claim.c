/* Claims in flight at fork() belong to the parent.
 *
 *   fork_claim RING
 *
 * The main thread opens a claim and writes its first half; another thread opens a claim and
 * writes its first half; then the main thread forks. In the child: the main thread's claim is
 * the parent's (ringlog_claim_write and ringlog_commit refuse it with RINGLOG_BAD_ARGUMENT and
 * leave it alone), the other thread's claim does not exist there, and the child writes its own
 * record "child" (not RINGLOG_WOULD_DEADLOCK: the claim is not its own). Then the parent
 * completes both claims. The drained log must hold "main-claim:first+second",
 * "thread-claim:first+second" (parent pid), and "child" (child pid), each exactly once; the
 * program prints "parent PID child PID". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ringlog.h>

static ringlog_writer *w;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stage;

#define CHECK(call, want)                                                                  \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != (want)) {                                                               \
            fprintf(stderr, "pid %d line %d: %s = %s, want %s: %s\n", (int)getpid(),        \
                    __LINE__, #call, ringlog_status_str(rc_), ringlog_status_str(want),     \
                    ringlog_last_error());                                                 \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

static void wait_stage(int s) {
    pthread_mutex_lock(&lock);
    while (stage < s) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void set_stage(int s) {
    pthread_mutex_lock(&lock);
    stage = s;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void *other_thread(void *arg) {
    (void)arg;
    CHECK(ringlog_claim(w, RINGLOG_LEVEL_INFO, 64), RINGLOG_OK);
    CHECK(ringlog_claim_write(w, "thread-claim:first", 18), RINGLOG_OK);
    set_stage(1);
    wait_stage(2); /* the fork is done */
    CHECK(ringlog_claim_write(w, "+second", 7), RINGLOG_OK);
    CHECK(ringlog_commit(w), RINGLOG_OK);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fork_claim RING\n");
        return 64;
    }
    CHECK(ringlog_open(argv[1], &w), RINGLOG_OK);
    CHECK(ringlog_claim(w, RINGLOG_LEVEL_INFO, 64), RINGLOG_OK);
    CHECK(ringlog_claim_write(w, "main-claim:first", 16), RINGLOG_OK);
    pthread_t thread;
    if (pthread_create(&thread, NULL, other_thread, NULL) != 0) return 5;
    wait_stage(1);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 5;
    if (child == 0) {
        CHECK(ringlog_claim_write(w, "+child", 6), RINGLOG_BAD_ARGUMENT);
        CHECK(ringlog_commit(w), RINGLOG_BAD_ARGUMENT);
        CHECK(ringlog_write(w, "child", 5), RINGLOG_OK);
        struct ringlog_stats stats = {.size = sizeof stats};
        CHECK(ringlog_stats(w, &stats), RINGLOG_OK);
        if (stats.written != 1) {
            fprintf(stderr, "child stats: %llu written\n", (unsigned long long)stats.written);
            exit(3);
        }
        ringlog_close(w);
        exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed (status %#x)\n", status);
        return 1;
    }
    set_stage(2);
    CHECK(ringlog_claim_write(w, "+second", 7), RINGLOG_OK);
    CHECK(ringlog_commit(w), RINGLOG_OK);
    pthread_join(thread, NULL);
    printf("parent %d child %d\n", (int)getpid(), (int)child);
    ringlog_close(w);
    return 0;
}
