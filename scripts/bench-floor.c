// The machine's floor under the daemon's one-token round trip (scripts/bench-floor.sh): what a
// message costs between two processes over a Unix socket (client <-> event loop) and between
// two threads over a mutex and condition variable (event loop <-> engine thread), each as a
// closed-loop ping-pong of one byte, 5000 round trips, with p50 and p99.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N = 5000 };

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *latencies) {
    qsort(latencies, N, sizeof(double), by_value);
    printf("%-44s p50 %6.1f us   p99 %6.1f us\n", what, latencies[N / 2], latencies[N * 99 / 100]);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int turn = 0;  // 1: the other thread's turn

static void *answer(void *unused) {
    (void)unused;
    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&lock);
        while (turn != 1) pthread_cond_wait(&changed, &lock);
        turn = 0;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void) {
    static double latencies[N];
    char byte = 'x';
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) { perror("socketpair"); return 1; }
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < N; i++) {
            if (read(pair[1], &byte, 1) != 1 || write(pair[1], &byte, 1) != 1) _exit(1);
        }
        _exit(0);
    }
    for (int i = 0; i < N; i++) {
        double start = now_us();
        if (write(pair[0], &byte, 1) != 1 || read(pair[0], &byte, 1) != 1) { perror("ping-pong"); return 1; }
        latencies[i] = now_us() - start;
    }
    waitpid(child, NULL, 0);
    report("two processes, Unix socket", latencies);

    pthread_t thread;
    pthread_create(&thread, NULL, answer, NULL);
    for (int i = 0; i < N; i++) {
        double start = now_us();
        pthread_mutex_lock(&lock);
        turn = 1;
        pthread_cond_broadcast(&changed);
        while (turn != 0) pthread_cond_wait(&changed, &lock);
        pthread_mutex_unlock(&lock);
        latencies[i] = now_us() - start;
    }
    pthread_join(thread, NULL);
    report("two threads, mutex and condition variable", latencies);
    return 0;
}
