/* The Sparrow wire protocol client; see sparrow_client.h. */
#define _POSIX_C_SOURCE 200809L

#include "sparrow_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sparrow/v1/envelope.pb-c.h"

#define SEARCH_METHOD "sparrow.v1.Coordinator/Search"

/* How long past the call's deadline the client still waits, so that the server's own
 * answer to a deadline (partial results, or DEADLINE_EXCEEDED) can arrive. */
#define DEADLINE_GRACE_MICROS 1000000u

/* Request ids only need to differ among the calls in flight on one connection; one
 * process-wide counter gives that for every connection. */
static atomic_uint_fast64_t next_request_id = 1;

int sparrow_connect(const char *host, int port)
{
    struct addrinfo hints, *addrs, *ai;
    char service[8];
    int fd = -1, last_errno = ECONNREFUSED, rc, one = 1;

    if (port < 1 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    snprintf(service, sizeof service, "%d", port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, service, &hints, &addrs);
    if (rc != 0) {
        if (rc != EAI_SYSTEM) /* EAI_SYSTEM leaves the cause in errno */
            errno = ENXIO;
        return -1;
    }
    for (ai = addrs; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addrs);
    if (fd < 0) {
        errno = last_errno;
        return -1;
    }
    /* Requests go out as one write each; don't let Nagle hold them back waiting for ACKs. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int sparrow_write_frame(int fd, const uint8_t *buf, size_t len)
{
    uint8_t header[SPARROW_FRAME_HEADER_LEN] = {'S', 'P', 'R', 'W', SPARROW_FRAME_VERSION, 0};
    struct iovec iov[2];
    struct msghdr msg;

    if (len > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    header[6] = (uint8_t)(len >> 24);
    header[7] = (uint8_t)(len >> 16);
    header[8] = (uint8_t)(len >> 8);
    header[9] = (uint8_t)len;

    iov[0].iov_base = header;
    iov[0].iov_len = sizeof header;
    iov[1].iov_base = (void *)buf;
    iov[1].iov_len = len;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;

    /* Header and body leave in one sendmsg where the socket takes them; MSG_NOSIGNAL turns
     * a closed peer into EPIPE rather than a process-killing SIGPIPE. */
    while (msg.msg_iovlen > 0) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        size_t sent;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        /* Skip what was sent: whole iovecs, then part of the next one. */
        sent = (size_t)n;
        while (msg.msg_iovlen > 0 && sent >= msg.msg_iov->iov_len) {
            sent -= msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + sent;
            msg.msg_iov->iov_len -= sent;
        }
    }
    return 0;
}

/* Reads exactly len bytes, retrying short reads and EINTR; end of stream is ECONNRESET. */
static int read_exact(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n == 0) {
            errno = ECONNRESET;
            return -1;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

int sparrow_read_frame(int fd, uint8_t **buf, size_t *len, size_t max_len)
{
    uint8_t header[SPARROW_FRAME_HEADER_LEN];
    uint8_t *body;
    uint32_t n;

    if (read_exact(fd, header, sizeof header) != 0)
        return -1;
    if (memcmp(header, "SPRW", 4) != 0 || header[4] != SPARROW_FRAME_VERSION || header[5] != 0) {
        errno = EPROTO;
        return -1;
    }
    n = (uint32_t)header[6] << 24 | (uint32_t)header[7] << 16 | (uint32_t)header[8] << 8 |
        (uint32_t)header[9];
    if (n > max_len) {
        errno = EMSGSIZE;
        return -1;
    }
    body = malloc(n > 0 ? n : 1); /* malloc(0) may return NULL */
    if (body == NULL)
        return -1;
    if (read_exact(fd, body, n) != 0) {
        int saved = errno;

        free(body);
        errno = saved;
        return -1;
    }
    *buf = body;
    *len = n;
    return 0;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t monotonic_micros(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Makes each read on fd give up with EAGAIN after micros; 0 restores waiting forever. */
static int set_read_timeout(int fd, uint64_t micros)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(micros / 1000000u);
    tv.tv_usec = (suseconds_t)(micros % 1000000u);
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Wraps req in a request envelope with id and sends it. */
static int send_request(int fd, uint64_t id, const Sparrow__V1__QueryRequest *req,
                        uint64_t timeout_micros, char *err, size_t errlen)
{
    Sparrow__V1__Envelope env = SPARROW__V1__ENVELOPE__INIT;
    size_t payload_len = sparrow__v1__query_request__get_packed_size(req);
    uint8_t *payload = malloc(payload_len > 0 ? payload_len : 1);
    uint8_t *frame = NULL;
    size_t frame_len;
    int rc = -1;

    if (payload == NULL) {
        set_err(err, errlen, "encoding request: out of memory");
        return -1;
    }
    sparrow__v1__query_request__pack(req, payload);
    env.request_id = id;
    env.kind = SPARROW__V1__ENVELOPE__KIND__REQUEST;
    env.method = (char *)SEARCH_METHOD;
    env.timeout_micros = timeout_micros;
    env.payload.len = payload_len;
    env.payload.data = payload;

    frame_len = sparrow__v1__envelope__get_packed_size(&env);
    frame = malloc(frame_len); /* > 0: the method is always set */
    if (frame == NULL) {
        set_err(err, errlen, "encoding request: out of memory");
    } else {
        sparrow__v1__envelope__pack(&env, frame);
        if (sparrow_write_frame(fd, frame, frame_len) != 0)
            set_err(err, errlen, "sending request: %s", strerror(errno));
        else
            rc = 0;
    }
    free(frame);
    free(payload);
    return rc;
}

/* Puts the reason a response could not be read (errno e) into err. */
static void report_read_error(int e, uint64_t timeout_micros, char *err, size_t errlen)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        set_err(err, errlen, "no response within %llu ms",
                (unsigned long long)((timeout_micros + DEADLINE_GRACE_MICROS) / 1000u));
    else if (e == ECONNRESET)
        set_err(err, errlen, "reading response: connection closed by server");
    else if (e == EPROTO)
        set_err(err, errlen, "reading response: not a Sparrow v%d frame", SPARROW_FRAME_VERSION);
    else if (e == EMSGSIZE)
        set_err(err, errlen, "reading response: frame longer than the %u-byte limit",
                SPARROW_MAX_FRAME_LEN);
    else
        set_err(err, errlen, "reading response: %s", strerror(e));
}

/* Reads frames until the envelope for id arrives, skipping those of other requests, or
 * until the local deadline (monotonic micros; 0: none) passes. */
static Sparrow__V1__Envelope *await_response(int fd, uint64_t id, uint64_t deadline,
                                             uint64_t timeout_micros, char *err,
                                             size_t errlen)
{
    for (;;) {
        Sparrow__V1__Envelope *env;
        uint8_t *frame;
        size_t frame_len;

        if (deadline != 0) {
            uint64_t now = monotonic_micros();

            if (now >= deadline) {
                report_read_error(EAGAIN, timeout_micros, err, errlen);
                return NULL;
            }
            if (set_read_timeout(fd, deadline - now) != 0) {
                set_err(err, errlen, "setting receive timeout: %s", strerror(errno));
                return NULL;
            }
        }
        if (sparrow_read_frame(fd, &frame, &frame_len, SPARROW_MAX_FRAME_LEN) != 0) {
            report_read_error(errno, timeout_micros, err, errlen);
            return NULL;
        }
        /* protobuf-c copies bytes fields out of the input, so the frame can go right away. */
        env = sparrow__v1__envelope__unpack(NULL, frame_len, frame);
        free(frame);
        if (env == NULL) {
            set_err(err, errlen, "reading response: malformed envelope");
            return NULL;
        }
        if (env->request_id == id)
            return env;
        sparrow__v1__envelope__free_unpacked(env, NULL);
    }
}

Sparrow__V1__QueryResponse *sparrow_search(int fd, const Sparrow__V1__QueryRequest *req,
                                           uint64_t timeout_micros, char *err,
                                           size_t errlen)
{
    uint64_t id = atomic_fetch_add(&next_request_id, 1);
    uint64_t deadline = 0;
    Sparrow__V1__Envelope *env;
    Sparrow__V1__QueryResponse *resp = NULL;

    if (send_request(fd, id, req, timeout_micros, err, errlen) != 0)
        return NULL;

    /* A deadline too far out to represent is no deadline. */
    if (timeout_micros != 0) {
        uint64_t now = monotonic_micros();

        if (timeout_micros <= UINT64_MAX - now - DEADLINE_GRACE_MICROS)
            deadline = now + timeout_micros + DEADLINE_GRACE_MICROS;
    }
    env = await_response(fd, id, deadline, timeout_micros, err, errlen);
    if (deadline != 0)
        set_read_timeout(fd, 0);
    if (env == NULL)
        return NULL;

    if (env->kind != SPARROW__V1__ENVELOPE__KIND__RESPONSE) {
        set_err(err, errlen, "reading response: envelope kind %d, expected RESPONSE",
                (int)env->kind);
    } else if (env->status != NULL && env->status->code != SPARROW__V1__STATUS__CODE__OK) {
        const ProtobufCEnumValue *code = protobuf_c_enum_descriptor_get_value(
            &sparrow__v1__status__code__descriptor, (int)env->status->code);
        const char *message = env->status->message;

        if (code != NULL)
            set_err(err, errlen, "server: %s%s%s", code->name, *message ? ": " : "", message);
        else
            set_err(err, errlen, "server: status %d%s%s", (int)env->status->code,
                    *message ? ": " : "", message);
    } else {
        resp = sparrow__v1__query_response__unpack(NULL, env->payload.len, env->payload.data);
        if (resp == NULL)
            set_err(err, errlen, "reading response: malformed QueryResponse");
    }
    sparrow__v1__envelope__free_unpacked(env, NULL);
    return resp;
}
