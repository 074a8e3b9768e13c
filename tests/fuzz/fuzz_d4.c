/* fuzz_d4.c - libFuzzer target for the D4 frame reader and session: any
 * byte stream, cut into reads at points the input chooses, must end in
 * lines or a clean reject, never a crash, and the session's buffers stay
 * within their bounds. Frames need a valid HMAC to reach the line splitter,
 * so the target also re-signs the frames it finds with the known key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static relay_sensor sensor;
static uint64_t lines;

static relay_sensor *lookup(void *ctx, const uint8_t uuid[16]) {
    (void)ctx;
    return memcmp(uuid, sensor.uuid, 16) == 0 ? &sensor : NULL;
}

static void on_line(void *ctx, relay_sensor *s, char *line, size_t len) {
    (void)ctx;
    (void)s;
    if (len == 0 || len > 256 || memchr(line, '\n', len))
        abort();
    lines++;
}

static void on_too_long(void *ctx, relay_sensor *s) {
    (void)ctx;
    (void)s;
}

static const d4_session_ops ops = {lookup, on_line, on_too_long};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static d4_session_conf conf = {4096, 256, 1, 1, 1};
    d4_session s;
    enum d4_reject why;
    char msg[256];
    if (!sensor.key) {
        memset(sensor.uuid, 0x3f, 16);
        sensor.key = (uint8_t *)"fuzz-key";
        sensor.keylen = 8;
        strcpy(sensor.name, "fuzz");
    }
    if (size < 2)
        return 0;
    size_t step = data[0] + 1;
    int resign = data[1] & 1;
    uint8_t *buf = malloc(size);
    memcpy(buf, data, size);
    /* walk the frames and give each a correct HMAC and our uuid */
    for (size_t off = 2; resign && off + D4_HEADER_SIZE <= size;) {
        d4_header h;
        d4_header_decode(buf + off, &h);
        size_t plen = h.size;
        if (plen > size - off - D4_HEADER_SIZE)
            break;
        memcpy(h.uuid, sensor.uuid, 16);
        d4_hmac_compute(sensor.key, sensor.keylen, &h, buf + off + D4_HEADER_SIZE, plen, h.hmac);
        d4_header_encode(&h, buf + off);
        off += D4_HEADER_SIZE + plen;
    }
    d4_session_init(&s, &conf);
    for (size_t off = 2; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (d4_session_feed(&s, &ops, NULL, buf + off, n, &why, msg, sizeof(msg)) < 0) {
            if (why <= D4R_NONE || why >= D4R_COUNT)
                abort();
            break;
        }
        if (s.carry.len > conf.max_line || s.rd.payload.cap > conf.max_payload)
            abort();
    }
    d4_session_free(&s);
    free(buf);
    return 0;
}
