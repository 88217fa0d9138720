/* A ground-truth OpenAI-compatible streaming server: truth_server PORT LOG [FIRST_MS] [GAP_MS] [TOKENS]
 *
 * It streams POST /v1/completions as vLLM does (one token per server-sent event, the running usage
 * in every chunk, `data: [DONE]`, chunked HTTP/1.1 on a keep-alive connection) on a schedule it
 * keeps itself: the first token FIRST_MS after the request reached its socket, then one every
 * GAP_MS (max_tokens of them, or TOKENS). And it logs what it really did, on CLOCK_MONOTONIC (the
 * clock Python's time.perf_counter reads on Linux): one JSON line per request in LOG — its id (the
 * prompt), when the request reached the socket (the kernel's receive stamp, SO_TIMESTAMPNS: the
 * server's own wake-up is not the client's latency) and, for each token, the clock just before its
 * write() and just after it returned: the bytes reached the client's socket between the two (or,
 * where a client that stopped reading had filled its window and the socket buffers, they waited
 * there: that wait is the client's back-pressure, its own lateness, and a token queued here for
 * EPOLLOUT keeps its write's stamps for the same reason). Both, because a server preempted
 * between its write and its stamp logs the token late by the preemption (up to 4.9 ms beside two
 * busy loops on 2 cores), which would read as the client's error; the token's truth is that
 * interval. A token written late is logged late: the log is the truth,
 * whatever the schedule said.
 *
 * One thread, epoll, a timerfd armed for the next due token: tens of thousands of writes a second
 * on one core. Binds 127.0.0.1 only. Built by inferperf.serving.fidelity with the machine's cc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define IN_BYTES 65536
#define SO_TIMESTAMPNS_ 35

typedef struct {
    int open, streaming, tokens, sent, heap_at;
    char in[IN_BYTES];
    size_t in_len;
    char id[160];
    double received, due;
    int received_by_kernel; /* 0: no kernel stamp came with the request, received is this server's read */
    double *writes, *writes_before;
    char *out; /* bytes a full socket buffer did not take yet */
    size_t out_len, out_cap;
} conn_t;

static conn_t *conns[MAX_FDS];
static int heap[MAX_FDS], heap_len = 0;
static double first_s = 0.020, gap_s = 0.010, realtime_offset = 0;
static int fixed_tokens = 0, epfd, tfd;
static FILE *logf_;
static volatile sig_atomic_t stopping = 0;

static double mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double real_(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void measure_offset(void) {
    double best = 1e9;
    for (int i = 0; i < 16; i++) {
        double a = mono(), r = real_(), b = mono();
        if (b - a < best) { best = b - a; realtime_offset = r - (a + b) / 2; }
    }
}

static void heap_swap(int i, int j) {
    int a = heap[i], b = heap[j]; heap[i] = b; heap[j] = a; conns[b]->heap_at = i; conns[a]->heap_at = j;
}
static void heap_push(int fd) {
    int i = heap_len++; heap[i] = fd; conns[fd]->heap_at = i;
    while (i > 0 && conns[heap[(i - 1) / 2]]->due > conns[heap[i]]->due) { heap_swap(i, (i - 1) / 2); i = (i - 1) / 2; }
}
static int heap_pop(void) {
    int top = heap[0]; heap_len--;
    if (heap_len > 0) {
        heap[0] = heap[heap_len]; conns[heap[0]]->heap_at = 0;
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < heap_len && conns[heap[l]]->due < conns[heap[m]]->due) m = l;
            if (r < heap_len && conns[heap[r]]->due < conns[heap[m]]->due) m = r;
            if (m == i) break;
            heap_swap(i, m); i = m;
        }
    }
    conns[top]->heap_at = -1;
    return top;
}
static void arm_timer(void) {
    struct itimerspec spec; memset(&spec, 0, sizeof spec);
    if (heap_len > 0) {
        double due = conns[heap[0]]->due;
        if (due <= 0) due = 1e-9;
        spec.it_value.tv_sec = (time_t)due; spec.it_value.tv_nsec = (long)((due - (double)(time_t)due) * 1e9);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void close_conn(int fd) {
    conn_t *c = conns[fd];
    if (!c) return;
    if (c->heap_at >= 0) { /* take it out of the schedule */
        c->due = -1; int i = c->heap_at;
        while (i > 0) { heap_swap(i, (i - 1) / 2); i = (i - 1) / 2; }
        heap_pop();
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd); free(c->writes); free(c->writes_before); free(c->out); free(c); conns[fd] = NULL;
}

static void send_bytes(int fd, const char *data, size_t len) {
    conn_t *c = conns[fd];
    if (c->out_len == 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno != EAGAIN) { close_conn(fd); return; }
        if (n < 0) n = 0;
        data += n; len -= (size_t)n;
        if (len == 0) return;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    if (c->out_len + len > c->out_cap) { c->out_cap = (c->out_len + len) * 2; c->out = realloc(c->out, c->out_cap); }
    memcpy(c->out + c->out_len, data, len); c->out_len += len;
}

static void send_chunk(int fd, const char *payload) {
    char frame[1024]; size_t len = strlen(payload);
    int head = snprintf(frame, sizeof frame, "%zx\r\n%s\r\n", len, payload);
    send_bytes(fd, frame, (size_t)head);
}

static void log_request(conn_t *c) {
    fprintf(logf_, "{\"id\": \"%s\", \"received_s\": %.9f, \"received_by\": \"%s\", \"writes_s\": [", c->id, c->received,
            c->received_by_kernel ? "kernel" : "read");
    for (int i = 0; i < c->sent; i++) fprintf(logf_, "%s%.9f", i ? ", " : "", c->writes[i]);
    fprintf(logf_, "], \"writes_before_s\": [");
    for (int i = 0; i < c->sent; i++) fprintf(logf_, "%s%.9f", i ? ", " : "", c->writes_before[i]);
    fprintf(logf_, "]}\n");
    fflush(logf_);
}

static void next_token(int fd) {
    conn_t *c = conns[fd];
    char payload[768];
    c->sent++;
    snprintf(payload, sizeof payload,
             "data: {\"id\": \"%s\", \"object\": \"text_completion\", \"model\": \"truth\", \"choices\": [{\"index\": 0, "
             "\"text\": \" t%d\", \"finish_reason\": %s}], \"usage\": {\"prompt_tokens\": 8, \"completion_tokens\": %d, "
             "\"total_tokens\": %d}}\n\n",
             c->id, c->sent, c->sent == c->tokens ? "\"length\"" : "null", c->sent, 8 + c->sent);
    double before = mono();
    send_chunk(fd, payload);
    if (!conns[fd]) return;
    c->writes[c->sent - 1] = mono();
    c->writes_before[c->sent - 1] = before;
    if (c->sent < c->tokens) {
        /* the schedule is fixed from the arrival: a late token does not push the later ones back */
        c->due = c->received + first_s + c->sent * gap_s;
        heap_push(fd);
        return;
    }
    log_request(c); /* before the end goes out: once the client has the whole response, its line is there */
    c->streaming = 0;
    send_chunk(fd, "data: [DONE]\n\n");
    if (!conns[fd]) return;
    send_bytes(fd, "0\r\n\r\n", 5);
}

static const char *find_value(const char *body, const char *key) {
    const char *at = strstr(body, key);
    if (!at) return NULL;
    at = strchr(at + strlen(key), ':');
    if (!at) return NULL;
    at++;
    while (*at == ' ') at++;
    return at;
}

static void handle_request(int fd, double kernel_received) {
    conn_t *c = conns[fd];
    c->in[c->in_len] = 0;
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end) return;
    size_t head = (size_t)(end + 4 - c->in);
    size_t body_len = 0;
    char *cl = strcasestr(c->in, "content-length:");
    if (cl && cl < end) body_len = strtoul(cl + 15, NULL, 10);
    if (c->in_len < head + body_len) return;
    if (strncmp(c->in, "GET", 3) == 0) {
        const char *json = strstr(c->in, "/v1/models") ? "{\"data\": [{\"id\": \"truth\"}]}" : "{\"status\": \"ok\"}";
        char response[256];
        int n = snprintf(response, sizeof response, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n\r\n%s", strlen(json), json);
        send_bytes(fd, response, (size_t)n);
    } else {
        char body[IN_BYTES];
        memcpy(body, c->in + head, body_len); body[body_len] = 0;
        c->id[0] = 0;
        const char *prompt = find_value(body, "\"prompt\"");
        if (prompt && *prompt == '"') {
            size_t i = 0; prompt++;
            while (*prompt && *prompt != '"' && i < sizeof c->id - 1) c->id[i++] = *prompt++;
            c->id[i] = 0;
        }
        const char *max_tokens = find_value(body, "\"max_tokens\"");
        c->tokens = fixed_tokens ? fixed_tokens : (max_tokens ? atoi(max_tokens) : 16);
        if (c->tokens < 1) c->tokens = 1;
        free(c->writes); c->writes = calloc((size_t)c->tokens, sizeof(double));
        free(c->writes_before); c->writes_before = calloc((size_t)c->tokens, sizeof(double));
        c->sent = 0; c->streaming = 1;
        c->received_by_kernel = kernel_received > 0;
        c->received = kernel_received > 0 ? kernel_received : mono();
        const char *headers = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
        send_bytes(fd, headers, strlen(headers));
        if (!conns[fd]) return;
        c->due = c->received + first_s;
        heap_push(fd);
    }
    size_t used = head + body_len;
    memmove(c->in, c->in + used, c->in_len - used); c->in_len -= used;
}

static void readable(int fd) {
    conn_t *c = conns[fd];
    for (;;) {
        char control[256];
        struct iovec iov = {.iov_base = c->in + c->in_len, .iov_len = IN_BYTES - 1 - c->in_len};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        ssize_t n = recvmsg(fd, &msg, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || iov.iov_len == 0) { close_conn(fd); return; }
        if (n < 0) return;
        double kernel = 0;
        for (struct cmsghdr *m = CMSG_FIRSTHDR(&msg); m; m = CMSG_NXTHDR(&msg, m)) {
            if (m->cmsg_level == SOL_SOCKET && m->cmsg_type == SO_TIMESTAMPNS_) {
                struct timespec t; memcpy(&t, CMSG_DATA(m), sizeof t);
                kernel = t.tv_sec + t.tv_nsec * 1e-9 - realtime_offset;
            }
        }
        c->in_len += (size_t)n;
        if (!c->streaming) handle_request(fd, kernel);
        if (!conns[fd]) return;
    }
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: truth_server PORT LOG [FIRST_MS] [GAP_MS] [TOKENS]\n"); return 2; }
    int port = atoi(argv[1]);
    logf_ = fopen(argv[2], "a");
    if (!logf_) { perror("log"); return 2; }
    if (argc > 3) first_s = atof(argv[3]) / 1000.0;
    if (argc > 4) gap_s = atof(argv[4]) / 1000.0;
    if (argc > 5) fixed_tokens = atoi(argv[5]);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
    measure_offset();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Stamping on the listening socket, from the start: the kernel stamps arriving packets only while
     * some socket asks for stamps, and turns that on lazily (a deferred static-key switch) when the
     * first one does. Asked for only on each accepted socket, a request that came on a fresh
     * connection while no other socket held stamping on arrived unstamped (1 round in 5 on a quiet
     * 2-core VM) and was stamped with this server's read, late by its wake-up: the client looked
     * that much late. Accepted sockets inherit the flag; the listening one keeps stamping on. */
    setsockopt(lfd, SOL_SOCKET, SO_TIMESTAMPNS_, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) { perror("listen"); return 2; }
    epfd = epoll_create1(0);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = tfd; epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
    struct epoll_event events[512];
    while (!stopping) {
        int n = epoll_wait(epfd, events, 512, 1000);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAX_FDS) { close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    setsockopt(cfd, SOL_SOCKET, SO_TIMESTAMPNS_, &one, sizeof one);
                    conns[cfd] = calloc(1, sizeof(conn_t)); conns[cfd]->heap_at = -1;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
                }
            } else if (fd == tfd) {
                uint64_t expirations; ssize_t r = read(tfd, &expirations, sizeof expirations); (void)r;
                double now = mono();
                while (heap_len > 0 && conns[heap[0]]->due <= now) next_token(heap_pop());
                arm_timer();
            } else if (conns[fd]) {
                if (events[i].events & EPOLLOUT) {
                    conn_t *c = conns[fd];
                    ssize_t w = write(fd, c->out, c->out_len);
                    if (w > 0) { memmove(c->out, c->out + w, c->out_len - (size_t)w); c->out_len -= (size_t)w; }
                    if (c->out_len == 0) { struct epoll_event mev = {.events = EPOLLIN, .data.fd = fd}; epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &mev); }
                }
                if (conns[fd] && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) readable(fd);
                arm_timer();
            }
        }
        if (n == 0) measure_offset(); /* idle: follow any slew of the real-time clock */
    }
    fflush(logf_);
    return 0;
}
