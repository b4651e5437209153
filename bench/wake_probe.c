/*
 * The machine's own pauses, for the real-time row of the bench (bench/pauses.py).
 *
 * Pinned to the CPU given as its argument and, where allowed, at real-time priority
 * (SCHED_FIFO), it sleeps 1 ms at a time on CLOCK_MONOTONIC. At that priority nothing of
 * the guest's normal work can keep it from running when it wakes, so a wake later than
 * LATE_NS past its deadline is time this CPU ran nothing at all: a pause of the machine
 * under it (a virtual CPU descheduled by its host), or of the kernel.
 *
 * Its first line is "fifo 1" (or "fifo 0" where real-time priority was refused); then one
 * line per late wake: "<deadline> <wake>", both epoch seconds. It runs until killed.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PERIOD_NS 1000000LL
#define LATE_NS 500000LL

static long long ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: wake_probe CPU\n");
        return 2;
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(atoi(argv[1]), &cpus);
    if (sched_setaffinity(0, sizeof cpus, &cpus) != 0) {
        perror("wake_probe: sched_setaffinity");
        return 2;
    }
    struct sched_param priority = {.sched_priority = 1};
    printf("fifo %d\n", sched_setscheduler(0, SCHED_FIFO, &priority) == 0);
    fflush(stdout);
    long long to_wall = ns(CLOCK_REALTIME) - ns(CLOCK_MONOTONIC);
    for (;;) {
        long long deadline = ns(CLOCK_MONOTONIC) + PERIOD_NS; /* from the last wake: a pause is one line */
        struct timespec at = {.tv_sec = deadline / 1000000000LL, .tv_nsec = deadline % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
        long long woke = ns(CLOCK_MONOTONIC);
        if (woke - deadline > LATE_NS) {
            printf("%.6f %.6f\n", (deadline + to_wall) / 1e9, (woke + to_wall) / 1e9);
            fflush(stdout);
        }
    }
}
