#!/usr/bin/env bash
# Builds and runs the libFuzzer targets.
#   tests/fuzz/run.sh [SECONDS [TARGET...]]  (default 60 per target; `make fuzz` passes $(FUZZ_SECONDS))
#   FUZZ_RUNS=N in the environment also stops each target after N executions (whichever first).
# common/*.c, verifier/*.c (but main.c) and every tests/fuzz/fuzz_*.c are compiled with clang -fsanitize=fuzzer,address,
# undefined and the project's warning flags into build/fuzz/. Each target runs for SECONDS on a
# fresh copy of tests/fuzz/corpus/<target>/ (new inputs stay in build/fuzz/corpus/<target>/;
# crash inputs go to build/fuzz/artifacts/). LeakSanitizer is on; tests/lsan.supp only names
# third-party libraries. Prints "fuzz <target>: <N> execs, <status>" per target and exits non-zero
# if any target crashed (or could not be built).
set -u
SECS=${1:-60}
case $SECS in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/fuzz
CC=${FUZZ_CC:-clang}
PKGS="openssl libcjson libpcre2-8 libcurl sqlite3 libmicrohttpd gnutls tss2-esys tss2-tctildr tss2-mu tss2-rc libarchive libpq"

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2
fi
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || exit 2
PKG_LIBS=$(pkg-config --libs $PKGS) || exit 2
WARN="-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral"
CFLAGS="-std=gnu11 $WARN -D_GNU_SOURCE -DQUINCE_VERSION=\"0.1.0\" -pthread -I$ROOT/common $PKG_CFLAGS
        -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
SAN="address,undefined"

mkdir -p "$OUT/obj" "$OUT/corpus" "$OUT/artifacts" "$OUT/logs"
cd "$ROOT" || exit 2

# The library: coverage instrumentation without libFuzzer's main.
# The verifier's objects too (without its main): fuzz_agent_answer drives its round.
objs=()
for src in common/*.c verifier/*.c; do
  [ "$src" = verifier/main.c ] && continue
  obj=$OUT/obj/$(dirname "$src")-$(basename "$src" .c).o
  if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find common verifier -name '*.h' -newer "$obj" | head -1)" ]; then
    # shellcheck disable=SC2086
    $CC $CFLAGS -fsanitize=fuzzer-no-link,$SAN -c "$src" -o "$obj" || { echo "fuzz: building $src failed" >&2; exit 2; }
  fi
  objs+=("$obj")
done
rm -f "$OUT/libquince-fuzz.a"
ar rcs "$OUT/libquince-fuzz.a" "${objs[@]}" || exit 2

export TSS2_LOG=${TSS2_LOG:-all+NONE}   # tss2-mu would log every malformed input
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}

failed=0
shift 2>/dev/null
targets=("$@")
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  if [ ${#targets[@]} -gt 0 ] && [[ " ${targets[*]} " != *" $name "* ]]; then continue; fi
  bin=$OUT/$name
  # shellcheck disable=SC2086
  if ! $CC $CFLAGS -fsanitize=fuzzer,$SAN "$src" -o "$bin" "$OUT/libquince-fuzz.a" $PKG_LIBS -lm; then
    echo "fuzz $name: 0 execs, BUILD FAILED"; failed=1; continue
  fi
  corpus=$OUT/corpus/$name
  rm -rf "$corpus"; mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -r "tests/fuzz/corpus/$name/." "$corpus/"; fi
  log=$OUT/logs/$name.log
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECS" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$OUT/artifacts/$name-" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+')
  if [ -z "$runs" ]; then
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  fi
  if [ $rc -eq 0 ] && grep -qE '^Done [0-9]+ runs' "$log"; then
    status=ok
  else
    failed=1
    art=$(grep -oE 'Test unit written to [^ ]+' "$log" | head -1 | sed 's/Test unit written to //')
    why=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z-]+' "$log" | head -1)
    [ -z "$why" ] && why=$(grep -m1 -oE 'runtime error: .*' "$log")
    status="CRASHED (exit $rc${why:+; $why}${art:+; input $art}; log $log)"
  fi
  echo "fuzz $name: ${runs:-0} execs, $status"
done
exit $failed
