/* Connect latency: COUNT new TCP connections to IP:PORT, one after the other, each timed around a blocking
 * connect() (the kernel sends the SYN and returns when the SYN-ACK has been processed), then closed with
 * an RST (SO_LINGER 0, so no TIME_WAIT piles up). Prints one JSON line: the samples in microseconds.
 * Used by benchmarks/first_packet.py, run inside a pod's network namespace (nsenter --net=...).
 *
 *   connlat IP PORT COUNT [GAP_US]      GAP_US: pause between connections (default 200)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: connlat IP PORT COUNT [GAP_US]\n"); return 2; }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) { fprintf(stderr, "bad IP\n"); return 2; }
    int count = atoi(argv[3]), gap = argc > 4 ? atoi(argv[4]) : 200, failed = 0;
    if (count < 1 || count > 1000000) { fprintf(stderr, "bad COUNT\n"); return 2; }
    double *us = calloc(count, sizeof *us);
    int n = 0;
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) { perror("socket"); return 1; }
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   /* bounds a lost SYN */
        double t0 = now_us();
        int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        double t1 = now_us();
        if (r == 0) us[n++] = t1 - t0; else failed++;
        close(fd);
        if (gap > 0) usleep(gap);
    }
    printf("{\"count\": %d, \"failed\": %d, \"us\": [", count, failed);
    for (int i = 0; i < n; i++) printf("%s%.2f", i ? ", " : "", us[i]);
    printf("]}\n");
    return failed == count;
}
