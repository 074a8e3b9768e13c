/* edit.h - changing partner policies from the console (console.h): a text
 * checked as `policy check` checks a file (messages with line and column),
 * what it changes for the partner said in words against the policy in
 * force, applied (the partner's file replaced atomically, the policies
 * reloaded, a history entry kept: who, when, why, the text), and the
 * history listed. It writes files; it does not decide who may. */
#ifndef PDNS_EDIT_H
#define PDNS_EDIT_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "recent.h"
#include "share.h"

#define EDIT_TEXT_MAX (256u * 1024)  /* a policy's text */
#define EDIT_HISTORY_MAX 200         /* history entries kept per partner */

#define EDIT_PREVIEW_SHOWN 200       /* records shown of what would be sent */

typedef struct policy_edit {
    const relay_config *cfg;
    share *sh;
    const recent *recent;        /* the records of the last minutes, or NULL */
} policy_edit;

/* Each answer is a JSON object appended to b, and an HTTP status is
 * returned (200, 404 no such partner, 422 the text is refused, 500), or
 * -1 when out of memory. */

/* {"partners": [{"name", "file", "version", "enabled", "words", "pending"}]}:
 * words is the policy in words (policy_describe: [{"section", "text"}]),
 * pending whether a change of it waits for approval. */
int edit_list(policy_edit *e, pdns_buf *b);

/* {"name", "version", "text", "words", "two_person", "pending"}: the file
 * of partner name as it is, in words, and the change waiting for approval
 * ({"at", "who", "comment", "version", "base", "text", "changes",
 * "messages", "ok"}; absent when none). */
int edit_get(policy_edit *e, const char *name, pdns_buf *b);

/* {"ok", "version" (when ok), "messages": [{"line", "column", "warning",
 * "text"}], "changes": ["sentence", ...]} for text as partner name's
 * policy. */
int edit_check(policy_edit *e, const char *name, const char *text, size_t len,
               pdns_buf *b);

/* Checks text, then makes it partner name's policy: {"version",
 * "changes", "in_force"}; 422 with the check's answer when it has errors.
 * who and comment go to the history. Under the two-person rule
 * (admin.two_person) the change is kept instead, waiting for a second
 * coordinator (state_dir/policy-pending/NAME.json; a later proposal
 * replaces it): 202 with {"pending": {"at", "who", "comment", "version",
 * "base"}}. */
int edit_apply(policy_edit *e, const char *name, const char *text, size_t len,
               const char *who, const char *comment, pdns_buf *b);

/* The change waiting for approval, which must be version (what the
 * approver saw): approve (by another user than who proposed it; the policy
 * in force must still be the one it was proposed against) applies it as
 * edit_apply would, its history entry naming both; else it is discarded.
 * 404 when none waits, 409 when it is not version or the policy changed
 * since, 403 when its proposer approves it. */
int edit_decide(policy_edit *e, const char *name, int approve, const char *version,
                const char *who, pdns_buf *b);

/* What partner name would receive under text from the records the relay
 * took in the last minutes (preview.h): {"ok", "version", "messages",
 * "records", "triples", "released", "summary": [{"what", "n"}], "sent":
 * [COF objects, the first EDIT_PREVIEW_SHOWN], "denied": [{"rrname",
 * "rrtype", "rdata", "verdict", "why"}, the first 50], "explain":
 * [sentences about the records named explain ("" for none)]}; 422 when
 * text has errors. */
int edit_preview(policy_edit *e, const char *name, const char *text, size_t len,
                 const char *explain, pdns_buf *b);

/* {"history": [{"at", "who", "comment", "version", "text", "approved_by"
 * (under the two-person rule)}]}, newest first. */
int edit_history(policy_edit *e, const char *name, pdns_buf *b);

#endif
