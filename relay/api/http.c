/* http.c - the response writer of the HTTP endpoints. See http.h. */
#include <libwebsockets.h>
#include <string.h>

#include "http.h"

int http_respond(struct lws *wsi, pdns_buf *body, unsigned status,
                 const char *ctype, const char *const *hdrs) {
    uint8_t hdr[LWS_PRE + 2048], *start = hdr + LWS_PRE, *q = start,
                                 *end = hdr + sizeof(hdr) - 1;
    size_t blen = body->len - LWS_PRE;
    if (lws_add_http_common_headers(wsi, status, ctype, blen, &q, end))
        return -1;
    for (; hdrs && hdrs[0]; hdrs += 2)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[0],
                                        (const unsigned char *)hdrs[1],
                                        (int)strlen(hdrs[1]), &q, end))
            return -1;
    if (lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}
