/*
 * sparrow-query: runs one search against a Sparrow coordinator and prints the hits.
 *
 *   sparrow-query [--k N] [--timeout-ms MS] [--vector TOKEN=WEIGHT,...] HOST:PORT ["query text"]
 *
 * Prints a coverage line, a line per failed shard, then one tab-separated line per hit:
 * rank, score, shard, id. Exits 0 on success (partial coverage included), 1 when the
 * search fails, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparrow_client.h"

#define DEFAULT_K 10
#define DEFAULT_TIMEOUT_MS 5000

static const char usage_text[] =
    "usage: sparrow-query [--k N] [--timeout-ms MS] [--vector TOKEN=WEIGHT,...]\n"
    "                     [--recall R | --threshold T --heap-factor H] HOST:PORT "
    "[\"query text\"]\n"
    "  --k N            hits to return (default 10)\n"
    "  --timeout-ms MS  deadline of the search, sent to the coordinator; the client waits\n"
    "                   1 s longer (default: the coordinator's deadline, wait 5000 ms;\n"
    "                   0: the coordinator's deadline, wait without limit)\n"
    "  --vector ...     search this sparse vector instead of encoding query text\n"
    "  --recall R       approximate search with the settings the shards calibrated for\n"
    "                   target recall R, in (0, 1] (default: exact)\n"
    "  --threshold T --heap-factor H\n"
    "                   approximate search with these settings: T in [0, 1), H in (0, 1]\n"
    "The query text is required unless --vector is given.\n";

/* A --vector argument parsed into the message fields QueryRequest.vector points at. */
struct query_vector {
    Sparrow__V1__TermWeight *terms;
    Sparrow__V1__TermWeight **ptrs;
    size_t n;
};

static int usage_error(const char *message)
{
    fprintf(stderr, "sparrow-query: %s\n%s", message, usage_text);
    return 2;
}

/* Parses a plain decimal (no sign, no spaces) within [min, max]. Returns 0 on success. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v;
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A plain decimal number (no sign, no exponent, finite). Returns 0 on success. */
static int parse_fraction(const char *s, double *out)
{
    double v;
    char *end;

    if ((*s < '0' || *s > '9') && *s != '.')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Splits "host:port" or "[ipv6]:port" in place. Returns 0 on success. */
static int parse_address(char *arg, char **host, int *port)
{
    char *colon = strrchr(arg, ':');
    unsigned long p;

    if (colon == NULL || colon == arg || parse_uint(colon + 1, 1, 65535, &p) != 0)
        return -1;
    *colon = '\0';
    if (arg[0] == '[') {
        size_t n = strlen(arg);

        if (n < 3 || arg[n - 1] != ']')
            return -1;
        arg[n - 1] = '\0';
        arg++;
    }
    *host = arg;
    *port = (int)p;
    return 0;
}

/*
 * Parses "tok=w,tok=w" in place (tokens point into spec; a token may itself contain '=',
 * the last one separates the weight). Returns 0, -1 when out of memory, or 2 after
 * reporting a malformed term.
 */
static int parse_vector(char *spec, struct query_vector *v)
{
    size_t cap = 1;
    char *item = spec;

    for (const char *p = spec; *p != '\0'; p++)
        cap += *p == ',';
    v->terms = calloc(cap, sizeof *v->terms);
    v->ptrs = calloc(cap, sizeof *v->ptrs);
    if (v->terms == NULL || v->ptrs == NULL)
        return -1;

    for (v->n = 0; v->n < cap; v->n++) {
        Sparrow__V1__TermWeight *t = &v->terms[v->n];
        char *comma = strchr(item, ',');
        char *eq, *end;
        float w;

        if (comma != NULL)
            *comma = '\0';
        eq = strrchr(item, '=');
        if (eq == NULL || eq == item || eq[1] == '\0')
            goto bad;
        *eq = '\0';
        errno = 0;
        w = strtof(eq + 1, &end);
        if (errno != 0 || *end != '\0' || !isfinite(w) || w <= 0) {
            *eq = '=';
            goto bad;
        }
        sparrow__v1__term_weight__init(t);
        t->token = item;
        t->weight = w;
        v->ptrs[v->n] = t;
        if (comma != NULL)
            item = comma + 1;
    }
    return 0;

bad:
    fprintf(stderr, "sparrow-query: --vector: bad term '%s' (want TOKEN=WEIGHT, WEIGHT > 0)\n",
            item);
    return 2;
}

static void print_response(const Sparrow__V1__QueryResponse *r)
{
    const Sparrow__V1__Coverage *c = r->coverage;

    printf("coverage %u/%u shards%s, took %.1f ms, mode %s (%u shards approximate)\n",
           c ? c->shards_ok : 0, c ? c->shards_total : 0, c && c->timed_out ? ", timed_out" : "",
           r->took_ms, *r->mode ? r->mode : "exact", r->approximate_shards);
    for (size_t i = 0; c != NULL && i < c->n_failed; i++) {
        const Sparrow__V1__ShardFailure *f = c->failed[i];

        printf("failed %s%s%s: %s\n", f->shard, *f->node ? " on " : "", f->node, f->reason);
    }
    for (size_t i = 0; i < r->n_hits; i++) {
        const Sparrow__V1__Hit *h = r->hits[i];

        printf("%zu\t%.4f\t%s\t%s\n", i + 1, (double)h->score, h->shard, h->id);
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"k", required_argument, NULL, 'k'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"vector", required_argument, NULL, 'v'},
        {"recall", required_argument, NULL, 'r'},
        {"threshold", required_argument, NULL, 'T'},
        {"heap-factor", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Sparrow__V1__QueryRequest req = SPARROW__V1__QUERY_REQUEST__INIT;
    Sparrow__V1__QueryResponse *resp;
    Sparrow__V1__SearchMode mode = SPARROW__V1__SEARCH_MODE__INIT;
    double recall = 0, threshold = -1, heap_factor = -1;
    struct query_vector vec = {NULL, NULL, 0};
    unsigned long k = DEFAULT_K, timeout_ms = DEFAULT_TIMEOUT_MS;
    char *vector_spec = NULL, *host, err[512];
    int opt, port, fd, positional, rc;

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            if (parse_uint(optarg, 1, UINT32_MAX, &k) != 0)
                return usage_error("--k wants a positive integer");
            break;
        case 't':
            if (parse_uint(optarg, 0, UINT32_MAX, &timeout_ms) != 0)
                return usage_error("--timeout-ms wants a number of milliseconds");
            /* An explicit deadline also bounds the coordinator's fan-out, not just the wait. */
            req.timeout_ms = (uint32_t)timeout_ms;
            break;
        case 'v':
            vector_spec = optarg;
            break;
        case 'r':
            if (parse_fraction(optarg, &recall) != 0 || recall <= 0 || recall > 1)
                return usage_error("--recall wants a number above 0 and at most 1");
            break;
        case 'T':
            if (parse_fraction(optarg, &threshold) != 0 || threshold < 0 || threshold >= 1)
                return usage_error("--threshold wants a number from 0 to below 1");
            break;
        case 'H':
            if (parse_fraction(optarg, &heap_factor) != 0 || heap_factor <= 0 || heap_factor > 1)
                return usage_error("--heap-factor wants a number above 0 and at most 1");
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default: /* getopt_long has said what was wrong */
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (recall > 0 && (threshold >= 0 || heap_factor >= 0))
        return usage_error("--recall or --threshold with --heap-factor, not both");
    if ((threshold >= 0) != (heap_factor >= 0))
        return usage_error("--threshold and --heap-factor go together");
    if (recall > 0 || threshold >= 0) {
        mode.approximate = 1;
        mode.target_recall = recall;
        mode.threshold = threshold >= 0 ? threshold : 0;
        mode.heap_factor = heap_factor >= 0 ? heap_factor : 0;
        req.mode = &mode;
    }
    positional = argc - optind;
    if (positional < 1)
        return usage_error("HOST:PORT missing");
    if (positional > 2)
        return usage_error("too many arguments");
    if (positional == 1 && vector_spec == NULL)
        return usage_error("query text missing");
    if (parse_address(argv[optind], &host, &port) != 0)
        return usage_error("want HOST:PORT (or [IPV6]:PORT) with a port in 1..65535");
    if (positional == 2)
        req.text = argv[optind + 1];
    if (vector_spec != NULL) {
        rc = parse_vector(vector_spec, &vec);
        if (rc != 0) {
            if (rc < 0)
                fprintf(stderr, "sparrow-query: out of memory\n");
            free(vec.terms);
            free(vec.ptrs);
            return rc < 0 ? 1 : 2;
        }
        req.n_vector = vec.n;
        req.vector = vec.ptrs;
    }
    req.k = (uint32_t)k;

    fd = sparrow_connect(host, port);
    if (fd < 0) {
        fprintf(stderr, "sparrow-query: connect to %s port %d: %s\n", host, port,
                errno == ENXIO ? "host not found" : strerror(errno));
        free(vec.terms);
        free(vec.ptrs);
        return 1;
    }
    resp = sparrow_search(fd, &req, (uint64_t)timeout_ms * 1000u, err, sizeof err);
    close(fd);
    free(vec.terms);
    free(vec.ptrs);
    if (resp == NULL) {
        fprintf(stderr, "sparrow-query: search: %s\n", err);
        return 1;
    }
    print_response(resp);
    sparrow__v1__query_response__free_unpacked(resp, NULL);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sparrow-query: writing output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
