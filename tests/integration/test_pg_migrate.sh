#!/usr/bin/env bash
# `quince-verifier migrate`: a single verifier's SQLite store (an attested agent, a failed agent
# with failure records, a runtime policy, a measured-boot policy) is moved to an empty PostgreSQL
# database. Every table arrives with the same rows; the verifier then runs on PostgreSQL and the
# agent's attestation continues from the copied state; new policies get fresh ids. Refused, with
# one line and exit status 2, and leaving the target as it was: a non-empty target, a source
# whose schema is newer, a missing source, a password in the URL, the same database twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
. "$(dirname "$0")/lib_pg.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 0; }

SQ=$QUINCE_TMP/verifier.sqlite
sq() { sqlite3 -cmd ".timeout 5000" "$SQ" "$@"; }
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0e0e1
BAD=d432fbb3-d2f1-4a97-9ef7-75bd81c0e0e2
IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 10 --seed 7 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/other" --entries 2 --seed 8 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
cp "$IMA/ascii_runtime_measurements" "$QUINCE_TMP/good.txt"
{ cat "$IMA/ascii_runtime_measurements"; tail -1 "$QUINCE_TMP/other/ascii_runtime_measurements"; } >"$QUINCE_TMP/bad.txt"

# ---- a SQLite installation with some history ----
RIG_DB=$SQ
rig_config
rig_start_verifier || { fail start_sqlite_verifier "no API port"; exit 0; }
rig_fake agent good --ima-log "$QUINCE_TMP/good.txt" || { fail fake_agent "no port"; exit 0; }
rig_register "$UUID" "$QUINCE_TMP/agent.ak" "$FAKE_PORT"
rig_fake bad good --ima-log "$QUINCE_TMP/bad.txt" || { fail fake_agent_bad "no port"; exit 0; }
rig_register "$BAD" "$QUINCE_TMP/bad.ak" "$FAKE_PORT"
[ "$(rig_add "$UUID" "$IMA/runtime_policy.json")" = 200 ] || fail add_agent "$(cat "$QUINCE_TMP/add.out")"
[ "$(rig_add "$BAD" "$IMA/runtime_policy.json")" = 200 ] || fail add_bad_agent "$(cat "$QUINCE_TMP/add.out")"
rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count >= 3" || fail sqlite_attests "$(rig_state "$UUID")"
rig_wait 20 "agent_id = '$BAD' AND operational_state = 9" || fail sqlite_bad_fails "$(rig_state "$BAD")"
rig_stop_verifier || fail sqlite_verifier_stops
sq "INSERT INTO mbpolicies (name, mb_policy) VALUES ('mb-one', '{\"scrtm_and_bios\": []}');"

pg_start || exit 0
export PGPASSFILE=$PG_PASSFILE
TARGET=$(pg_newdb migrated) || { fail newdb "cannot create the database"; exit 0; }

# ---- the copy ----
expect_rc migrate_exit0 0 "$VERIFIER" migrate --from "sqlite://$SQ" --to "$TARGET"
expect_grep migrate_reports_counts "2 agents" "$LAST_OUT"
expect_grep migrate_reports_engines "(SQLite) to $TARGET (PostgreSQL)" "$LAST_OUT"
[ "$(printf '%s\n' "$LAST_OUT" | wc -l)" = 1 ] && pass migrate_one_line || fail migrate_one_line "$LAST_OUT"
pg() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$TARGET" -c "$1"; }
same() {  # same NAME SQLITE-QUERY PG-QUERY
  local a b
  a=$(sq "$2"); b=$(pg "$3")
  [ -n "$a" ] && [ "$a" = "$b" ] && pass "$1" || fail "$1" "sqlite '$a' postgresql '$b'"
}
for t in registrar policy_bodies policies mbpolicies agents failures; do
  same "same_rows_$t" "SELECT count(*) FROM $t" "SELECT count(*) FROM $t"
done
[ "$(sq 'SELECT count(*) FROM failures')" -ge 1 ] && pass source_has_failure_records || fail source_has_failure_records
AGQ="agent_id, operational_state, next_ima_ml_entry, attestation_count, pcr10_alg, boottime, tpm_clock, severity_level, last_event_id, policy_id, mb_policy_id, ima_good_total"
same same_agents "SELECT $AGQ, hex(pcr10) FROM agents ORDER BY agent_id" "SELECT $AGQ, upper(encode(pcr10, 'hex')) FROM agents ORDER BY agent_id"
same same_registrar "SELECT agent_id, aik_tpm, mtls_cert, port, active FROM registrar ORDER BY agent_id" \
  "SELECT agent_id, aik_tpm, mtls_cert, port, active FROM registrar ORDER BY agent_id"
same same_policies "SELECT p.id, p.name, b.checksum, length(b.body) FROM policies p JOIN policy_bodies b ON b.id = p.body_id" \
  "SELECT p.id, p.name, b.checksum, length(b.body) FROM policies p JOIN policy_bodies b ON b.id = p.body_id"
same same_failures "SELECT agent_id, seq, entry, path, event_id, reason, time FROM failures ORDER BY agent_id, seq" \
  "SELECT agent_id, seq, entry, path, event_id, reason, time FROM failures ORDER BY agent_id, seq"
same same_mbpolicies "SELECT id, name, mb_policy FROM mbpolicies" "SELECT id, name, mb_policy FROM mbpolicies"

# ---- refusals; the target stays as it is ----
snap() { pg "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM registrar), (SELECT max(version) FROM schema_version)"; }
before=$(snap)
expect_rc migrate_nonempty_exit2 2 "$VERIFIER" migrate --from "$SQ" --to "$TARGET"
expect_grep migrate_nonempty_reason "is not empty" "$LAST_OUT"
[ "$(printf '%s\n' "$LAST_OUT" | wc -l)" = 1 ] && pass migrate_nonempty_one_line || fail migrate_nonempty_one_line "$LAST_OUT"
[ "$(snap)" = "$before" ] && pass migrate_nonempty_untouched || fail migrate_nonempty_untouched "$before -> $(snap)"
cp "$SQ" "$QUINCE_TMP/newer.sqlite"
sqlite3 "$QUINCE_TMP/newer.sqlite" "UPDATE schema_version SET version = 99"
EMPTY=$(pg_newdb empty2)
expect_rc migrate_newer_source_exit2 2 "$VERIFIER" migrate --from "$QUINCE_TMP/newer.sqlite" --to "$EMPTY"
expect_grep migrate_newer_source_reason "schema version 99 is newer" "$LAST_OUT"
[ "$(sqlite3 "$QUINCE_TMP/newer.sqlite" 'SELECT max(version) FROM schema_version')" = 99 ] \
  && pass migrate_newer_source_untouched || fail migrate_newer_source_untouched
[ "$(psql -X -q -t -A "$EMPTY" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] \
  && pass migrate_refusal_writes_no_target || fail migrate_refusal_writes_no_target
expect_rc migrate_missing_source_exit2 2 "$VERIFIER" migrate --from "$QUINCE_TMP/nothing.sqlite" --to "$EMPTY"
expect_grep migrate_missing_source_reason "does not exist" "$LAST_OUT"
[ ! -e "$QUINCE_TMP/nothing.sqlite" ] && pass migrate_missing_source_not_created || fail migrate_missing_source_not_created
expect_rc migrate_password_exit2 2 "$VERIFIER" migrate --from "$SQ" --to "postgresql://quince:secret@/x?host=$PG_DIR"
expect_grep migrate_password_reason "must not contain a password" "$LAST_OUT"
case $LAST_OUT in *secret*) fail migrate_password_not_echoed "$LAST_OUT" ;; *) pass migrate_password_not_echoed ;; esac
expect_rc migrate_same_exit2 2 "$VERIFIER" migrate --from "$SQ" --to "sqlite://$SQ"
expect_rc migrate_usage_exit2 2 "$VERIFIER" migrate --from "$SQ"

# ---- the verifier on the copy ----
count=$(pg "SELECT attestation_count FROM agents WHERE agent_id = '$UUID'")
RIG_DB=$TARGET
sed -i "s|^database = .*|database = $TARGET|" "$QUINCE_TMP/quince.conf"
rig_start_verifier || { fail start_pg_verifier "no API port"; exit 0; }
if rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count > $count"; then
  pass attestation_continues_on_pg
else
  fail attestation_continues_on_pg "state $(rig_state "$UUID") count $(rig_field "$UUID" attestation_count) (was $count)"
fi
[ "$(rig_state "$BAD")" = 9 ] && pass failed_agent_stays_failed || fail failed_agent_stays_failed "$(rig_state "$BAD")"
jq -n --arg p "$(base64 -w0 "$IMA/runtime_policy.json")" '{runtime_policy: $p, tpm_policy: null, runtime_policy_key: ""}' >"$QUINCE_TMP/pol.json"
st=$(curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/api.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data-binary @"$QUINCE_TMP/pol.json" "https://127.0.0.1:$RIG_API/v2.1/allowlists/after-migrate")
[ "$st" = 201 ] || [ "$st" = 200 ] && pass new_policy_after_migrate || fail new_policy_after_migrate "HTTP $st $(cat "$QUINCE_TMP/api.out")"
ids=$(pg "SELECT count(DISTINCT id) = count(*) FROM policies")
[ "$ids" = t ] && [ "$(pg 'SELECT count(*) FROM policies')" -ge 2 ] && pass new_ids_continue || fail new_ids_continue "$ids"
rig_stop_verifier || fail pg_verifier_stops
if grep -q "Sanitizer\|runtime error" "$RIG_VLOG"; then fail no_sanitizer_reports; else pass no_sanitizer_reports; fi
