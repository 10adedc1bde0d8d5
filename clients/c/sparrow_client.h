/*
 * A minimal client for Sparrow's framed protobuf-over-TCP protocol.
 *
 * A frame on the wire is
 *   magic "SPRW" (4 bytes) | version (1 byte, = 1) | flags (1 byte, = 0) |
 *   length (4 bytes, big-endian) | serialized sparrow.v1.Envelope (length bytes)
 * (see proto/sparrow/v1/envelope.proto).
 *
 * The frame functions return -1 with errno set on failure. Besides the system's codes:
 *   EPROTO     the bytes are not a version-1 Sparrow frame (bad magic, version or flags)
 *   EMSGSIZE   the frame is longer than the reader's max_len (or than 2^32-1 bytes to write)
 *   ECONNRESET the peer closed the connection before a whole frame arrived
 * After any failure the connection's framing is out of step: close it.
 *
 * A connection carries one call at a time through these functions; they are not meant to
 * be used on one descriptor from several threads at once.
 */
#ifndef SPARROW_CLIENT_H
#define SPARROW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/v1/coordinator.pb-c.h"

#define SPARROW_FRAME_HEADER_LEN 10
#define SPARROW_FRAME_VERSION 1

/* The largest response frame sparrow_search accepts. */
#define SPARROW_MAX_FRAME_LEN (16u * 1024u * 1024u)

/*
 * Resolves host (a name or an IPv4/IPv6 literal) and connects to the first address that
 * accepts on port. Returns the connected socket, or -1 with errno set; when the host does
 * not resolve, errno is ENXIO.
 */
int sparrow_connect(const char *host, int port);

/* Sends buf[0..len) as one frame on the stream socket fd. Returns 0, or -1 with errno set
 * (EPIPE, not SIGPIPE, when the peer has gone). */
int sparrow_write_frame(int fd, const uint8_t *buf, size_t len);

/*
 * Reads one frame. On success returns 0 and sets *buf to a malloc'd copy of the envelope
 * bytes (free it) and *len to their count. A frame longer than max_len fails with EMSGSIZE
 * before anything is allocated or read past the header.
 */
int sparrow_read_frame(int fd, uint8_t **buf, size_t *len, size_t max_len);

/*
 * Calls "sparrow.v1.Coordinator/Search" with req and waits for its response; frames of
 * other requests that arrive meanwhile are skipped. timeout_micros travels in the envelope
 * (0: no deadline); unless 0, the client also stops waiting one second after it passes.
 *
 * Returns the response (free it with sparrow__v1__query_response__free_unpacked(r, NULL)),
 * or NULL with a message in err (truncated to errlen) that says what failed, including
 * the server's status code and message when the call was not OK.
 */
Sparrow__V1__QueryResponse *sparrow_search(int fd, const Sparrow__V1__QueryRequest *req,
                                           uint64_t timeout_micros, char *err,
                                           size_t errlen);

#endif
