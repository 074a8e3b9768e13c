/* http.h - the response writer shared by the HTTP endpoints (http_api.c,
 * query.c): status line, headers and a body sent from the lws writeable
 * callback. It knows nothing of what the endpoints answer. */
#ifndef PDNS_HTTP_H
#define PDNS_HTTP_H

#include "buf.h"

struct lws;

/* Sends body (LWS_PRE bytes of headroom, then the data) with status,
 * content type and extra headers (NULL-terminated "name:", "value" pairs);
 * the body goes out when the connection is writeable. Returns 0, or -1. */
int http_respond(struct lws *wsi, pdns_buf *body, unsigned status,
                 const char *ctype, const char *const *hdrs);

#endif
