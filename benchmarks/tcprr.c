/* TCP request/response on one connection, netperf TCP_RR style. Used by benchmarks/network.py.
 *
 *   tcprr -s PORT                      server: accept connections one at a time, echo everything back
 *   tcprr -c IP PORT COUNT [SIZE]      client: one connection (TCP_NODELAY), COUNT round trips of SIZE
 *                                      bytes (default 64), each timed; prints one JSON line (microseconds)
 * The server ends when its pod is removed (netlab down ends the pod's processes).
 */
#include <arpa/inet.h>
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

static int full(int fd, char *buf, int len, int writing) {
    for (int off = 0; off < len;) {
        int r = writing ? write(fd, buf + off, len - off) : read(fd, buf + off, len - off);
        if (r <= 0) return -1;
        off += r;
    }
    return 0;
}

static int server(int port) {
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 16)) { perror("bind/listen"); return 1; }
    char buf[65536];
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            if (full(fd, buf, r, 1)) break;
        close(fd);
    }
}

static int client(const char *ip, int port, int count, int size) {
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) { fprintf(stderr, "bad IP\n"); return 2; }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); return 1; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char *buf = calloc(1, size);
    double *us = calloc(count, sizeof *us), t_start = now_us();
    for (int i = 0; i < count; i++) {
        double t0 = now_us();
        if (full(fd, buf, size, 1) || full(fd, buf, size, 0)) { fprintf(stderr, "round trip %d failed\n", i); return 1; }
        us[i] = now_us() - t0;
    }
    double total = now_us() - t_start;
    close(fd);
    printf("{\"count\": %d, \"size\": %d, \"total_s\": %.6f, \"us\": [", count, size, total / 1e6);
    for (int i = 0; i < count; i++) printf("%s%.2f", i ? ", " : "", us[i]);
    printf("]}\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "-s")) return server(atoi(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "-c"))
        return client(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 64);
    fprintf(stderr, "usage: tcprr -s PORT | tcprr -c IP PORT COUNT [SIZE]\n");
    return 2;
}
