/*
 * rtp-sender: the load generator's media half. Sends G.711 (PCMU) RTP to many streams at
 * once, 50 packets/s per stream, paced on CLOCK_MONOTONIC with absolute sleeps and
 * batched with sendmmsg, for a fixed number of seconds.
 *
 * bench/load.py compiles it (gcc -O2 -o bench/bin/rtp-sender bench/sender.c) and runs
 * one or more copies; copy I of N sends the streams whose index is I modulo N. Each
 * stream is one line of the ports file (a UDP port on --dest); its SSRC, sequence and
 * timestamp are its own. The 20 ms period is cut into --slots sub-ticks and every stream
 * keeps a fixed sub-tick, so the load is spread over the period as independent calls
 * would spread it, instead of one burst every 20 ms.
 *
 * Nothing is dropped silently: a send the kernel refuses with EAGAIN is retried after
 * poll() says the socket is writable (and counted); any other error is counted per
 * packet. A tick that starts late is caught up (every packet is still sent), and the
 * lateness is reported, so a sender that cannot keep up shows it.
 *
 * Output, one line on stdout at the end:
 *   sent=N streams=N errors=N eagain=N late_ticks=N max_late_us=N ticks=N
 *   user_s=F sys_s=F first_errno=N
 *
 * Usage: rtp-sender --dest 127.0.0.1 --ports FILE --seconds S --start-ns T
 *                   [--proc I --nproc N] [--slots K] [--batch B] [--ssrc-base X]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PACKET 172 /* 12-byte RTP header + 160 bytes of PCMU (20 ms at 8 kHz) */
#define PERIOD_NS 20000000LL
#define MAX_BATCH 1024

struct stream {
    struct sockaddr_in to;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    unsigned char buf[PACKET];
};

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_until(long long when) {
    struct timespec t = {.tv_sec = when / 1000000000LL, .tv_nsec = when % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

/* G.711 mu-law of one 16-bit sample (ITU-T G.711; bias 0x84, clip 32635). */
static unsigned char ulaw(int sample) {
    int sign = 0;
    if (sample < 0) {
        sample = -sample;
        sign = 0x80;
    }
    if (sample > 32635) sample = 32635;
    sample += 0x84;
    int exponent = 7;
    for (int mask = 0x4000; !(sample & mask) && exponent > 0; mask >>= 1) exponent--;
    int mantissa = (sample >> (exponent + 3)) & 0x0F;
    return (unsigned char)~(sign | (exponent << 4) | mantissa);
}

static void usage(void) {
    fprintf(stderr,
            "usage: rtp-sender --dest ADDR --ports FILE --seconds S --start-ns T "
            "[--proc I --nproc N] [--slots K] [--batch B] [--ssrc-base X]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *dest = NULL, *ports_path = NULL;
    double seconds = 0;
    long long start_ns = 0;
    long proc = 0, nproc = 1, slots = 20, batch = 256;
    unsigned long ssrc_base = 0x10000000UL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--dest")) dest = v;
        else if (!strcmp(k, "--ports")) ports_path = v;
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else if (!strcmp(k, "--start-ns")) start_ns = atoll(v);
        else if (!strcmp(k, "--proc")) proc = atol(v);
        else if (!strcmp(k, "--nproc")) nproc = atol(v);
        else if (!strcmp(k, "--slots")) slots = atol(v);
        else if (!strcmp(k, "--batch")) batch = atol(v);
        else if (!strcmp(k, "--ssrc-base")) ssrc_base = strtoul(v, NULL, 0);
        else usage();
    }
    if (!dest || !ports_path || seconds <= 0 || nproc < 1 || proc < 0 || proc >= nproc ||
        slots < 1 || slots > 1000 || batch < 1 || batch > MAX_BATCH)
        usage();

    struct in_addr addr;
    if (inet_pton(AF_INET, dest, &addr) != 1) {
        fprintf(stderr, "bad --dest %s\n", dest);
        return 2;
    }
    FILE *f = fopen(ports_path, "r");
    if (!f) {
        perror(ports_path);
        return 2;
    }
    size_t cap = 1024, n = 0;
    struct stream *streams = calloc(cap, sizeof *streams);
    long port;
    long index = 0;
    unsigned char payload[160];
    /* 1 kHz tone: eight samples a period at 8 kHz, amplitude 8000. */
    static const int tone[8] = {0, 5657, 8000, 5657, 0, -5657, -8000, -5657};
    for (int s = 0; s < 160; s++) payload[s] = ulaw(tone[s % 8]);
    while (fscanf(f, "%ld", &port) == 1) {
        if (port <= 0 || port > 65535) {
            fprintf(stderr, "bad port %ld in %s\n", port, ports_path);
            return 2;
        }
        if (index++ % nproc != proc) continue;
        if (n == cap) {
            cap *= 2;
            streams = realloc(streams, cap * sizeof *streams);
        }
        struct stream *st = &streams[n];
        memset(st, 0, sizeof *st);
        st->to.sin_family = AF_INET;
        st->to.sin_addr = addr;
        st->to.sin_port = htons((uint16_t)port);
        st->ssrc = (uint32_t)(ssrc_base + (unsigned long)(index - 1));
        st->seq = (uint16_t)(st->ssrc * 2654435761u >> 16); /* arbitrary, per stream */
        st->ts = st->ssrc * 40503u;
        st->buf[0] = 0x80;
        st->buf[1] = 0x80; /* marker on the first packet, PT 0 (PCMU) */
        memcpy(st->buf + 12, payload, 160);
        n++;
    }
    fclose(f);
    if (n == 0) {
        printf("sent=0 streams=0 errors=0 eagain=0 late_ticks=0 max_late_us=0 ticks=0 "
               "user_s=0 sys_s=0 first_errno=0\n");
        return 0;
    }

    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (sock < 0) {
        perror("socket");
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr = addr};
    if (bind(sock, (struct sockaddr *)&local, sizeof local) < 0) {
        perror("bind");
        return 1;
    }

    struct mmsghdr *msgs = calloc(MAX_BATCH, sizeof *msgs);
    struct iovec *iov = calloc(MAX_BATCH, sizeof *iov);
    long long ticks_total = (long long)(seconds * 1e9 / PERIOD_NS + 0.5);
    long long slot_ns = PERIOD_NS / slots;
    unsigned long long sent = 0, errors = 0, eagain = 0, late_ticks = 0, subticks = 0;
    long long max_late = 0;
    int first_errno = 0;
    if (start_ns <= 0) start_ns = now_ns();

    for (long long tick = 0; tick < ticks_total; tick++) {
        for (long slot = 0; slot < slots; slot++) {
            long long due = start_ns + tick * PERIOD_NS + slot * slot_ns;
            sleep_until(due);
            long long late = now_ns() - due;
            if (late > max_late) max_late = late;
            if (late > PERIOD_NS) late_ticks++;
            subticks++;
            /* Streams of this slot: index slot, slot + slots, ... */
            size_t i = (size_t)slot;
            while (i < n) {
                int count = 0;
                size_t first = i;
                for (; i < n && count < batch; i += (size_t)slots, count++) {
                    struct stream *st = &streams[i];
                    uint16_t seq = htons(st->seq);
                    uint32_t ts = htonl(st->ts), ssrc = htonl(st->ssrc);
                    memcpy(st->buf + 2, &seq, 2);
                    memcpy(st->buf + 4, &ts, 4);
                    memcpy(st->buf + 8, &ssrc, 4);
                    iov[count].iov_base = st->buf;
                    iov[count].iov_len = PACKET;
                    memset(&msgs[count].msg_hdr, 0, sizeof msgs[count].msg_hdr);
                    msgs[count].msg_hdr.msg_name = &st->to;
                    msgs[count].msg_hdr.msg_namelen = sizeof st->to;
                    msgs[count].msg_hdr.msg_iov = &iov[count];
                    msgs[count].msg_hdr.msg_iovlen = 1;
                }
                int done = 0;
                while (done < count) {
                    int r = sendmmsg(sock, msgs + done, (unsigned)(count - done), 0);
                    if (r > 0) {
                        done += r;
                        continue;
                    }
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        eagain++;
                        struct pollfd p = {.fd = sock, .events = POLLOUT};
                        poll(&p, 1, 100);
                        continue;
                    }
                    if (r < 0 && errno == EINTR) continue;
                    /* Any other error belongs to the first unsent message: count, skip. */
                    if (!first_errno) first_errno = r < 0 ? errno : -1;
                    errors++;
                    done++;
                }
                /* Advance every stream of the batch: a packet counts as sent once the
                 * kernel took it; errored ones still consume their seq/timestamp, as a
                 * real sender's lost packet would. */
                size_t j = first;
                for (int c = 0; c < count; c++, j += (size_t)slots) {
                    streams[j].seq++;
                    streams[j].ts += 160;
                    streams[j].buf[1] = 0x00;
                }
                sent += (unsigned long long)count;
            }
        }
    }
    sent -= errors;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("sent=%llu streams=%zu errors=%llu eagain=%llu late_ticks=%llu max_late_us=%lld "
           "ticks=%llu user_s=%.3f sys_s=%.3f first_errno=%d\n",
           sent, n, errors, eagain, late_ticks, max_late / 1000, subticks,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, first_errno);
    close(sock);
    free(msgs);
    free(iov);
    free(streams);
    return 0;
}
