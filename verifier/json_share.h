/* json_share.h — parsed JSON texts of agent records (accept_tpm_*_algs lists, tpm_policy) held
 * once for every agent whose record has the same text, like the shared runtime policies.
 *
 * Contract: vjson_share_get parses a text the first time and hands out a counted reference to
 * the same tree for every later equal text; vjson_share_put drops one (the tree goes with the
 * last). The trees are never modified after they are made, so any thread may read them; get
 * and put lock a process-wide table (called once per record, never per round). */
#ifndef QUINCE_VERIFIER_JSON_SHARE_H
#define QUINCE_VERIFIER_JSON_SHARE_H

#include <cjson/cJSON.h>

typedef struct vjson_shared vjson_shared;

/* NULL when text is NULL, does not parse, or memory runs out: the caller treats all three as
 * "no value" (as a failed cJSON_Parse was treated before). */
vjson_shared *vjson_share_get(const char *text);
void vjson_share_put(vjson_shared *s);                 /* NULL: nothing */
const cJSON *vjson_share_json(const vjson_shared *s);  /* NULL for NULL */
/* Distinct texts held now (tests, metrics). */
size_t vjson_share_count(void);

#endif
