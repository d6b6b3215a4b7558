#!/usr/bin/env bash
# Packaging: `make deb` builds quince-common, -agent, -verifier and -tenant with debhelper; lintian
# finds nothing; the packages unpacked into a throw-away root hold the programs (hardened by
# dpkg-buildflags), the units with ExecStart=/usr/bin/..., the man pages and the config as a
# conffile; `make install` honours PREFIX and DESTDIR and its units pass `systemd-analyze
# verify`. As root on a machine with no Quince installed, the packages are also installed for
# real (user quince, /var/lib/quince 0700, quince-verifier --version run as quince, units
# verified) and purged, leaving nothing behind; QUINCE_PKG_SYSTEM=0 turns that part off.
source "$(dirname "$0")/lib.sh"
for t in dpkg-buildpackage dh lintian help2man systemd-analyze; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed (packaging/install-deps.sh)"; exit 0; }
done
D=$QUINCE_TMP/deb
R=$QUINCE_TMP/root
mkdir -p "$R"
PKGS=(quince-common quince-agent quince-verifier quince-tenant)

# ---- build -----------------------------------------------------------------------------------------
if make -C "$QUINCE_ROOT" --no-print-directory DEBDIR="$D" deb >"$QUINCE_TMP/deb.log" 2>&1; then pass "make deb"
else fail "make deb" "$(tail -5 "$QUINCE_TMP/deb.log" | tr '\n' ' ')"; exit 0; fi
for p in "${PKGS[@]}"; do
  f=$(ls "$D/${p}"_*.deb 2>/dev/null | head -1)
  [ -n "$f" ] && pass "$p built" || fail "$p built" "$(ls "$D")"
  eval "DEB_${p//-/_}=\$f"
done
grep -q -- "-fstack-protector-strong" "$QUINCE_TMP/deb.log" && grep -q "D_FORTIFY_SOURCE" "$QUINCE_TMP/deb.log" \
  && pass "compiled with dpkg-buildflags' hardening flags" || fail "compiled with dpkg-buildflags' hardening flags"

# ---- lintian -----------------------------------------------------------------------------------------
lintian --pedantic "$D"/*.changes >"$QUINCE_TMP/lintian.out" 2>&1
if grep -E '^[EWIP]: ' "$QUINCE_TMP/lintian.out" >"$QUINCE_TMP/lintian.tags"; then
  fail "lintian --pedantic finds nothing" "$(head -5 "$QUINCE_TMP/lintian.tags" | tr '\n' ' ')"
else pass "lintian --pedantic finds nothing"; fi

# ---- contents, in a throw-away root -------------------------------------------------------------------
for p in "${PKGS[@]}"; do eval "dpkg-deb -x \"\$DEB_${p//-/_}\" \"$R\""; done
for f in usr/bin/quince-agent usr/bin/quince-verifier usr/bin/quince-tenant lib/systemd/system/quince-agent.service \
         lib/systemd/system/quince-verifier.service usr/share/man/man8/quince-agent.8.gz \
         usr/share/man/man8/quince-verifier.8.gz usr/share/man/man1/quince-tenant.1.gz etc/quince/quince.conf; do
  [ -e "$R/$f" ] || missing="${missing:-} /$f"
done
[ -z "${missing:-}" ] && pass "packages hold the programs, units, man pages and config" \
  || fail "packages hold the programs, units, man pages and config" "missing$missing"
if grep -q '^ExecStart=/usr/bin/quince-agent ' "$R/lib/systemd/system/quince-agent.service" &&
   grep -q '^ExecStart=/usr/bin/quince-verifier ' "$R/lib/systemd/system/quince-verifier.service"; then
  pass "units run /usr/bin"
else fail "units run /usr/bin" "$(grep -h ExecStart "$R"/lib/systemd/system/*.service)"; fi
zcat "$R/usr/share/man/man8/quince-verifier.8.gz" | grep -q "registrar API" && pass "man page made from --help" \
  || fail "man page made from --help"
dpkg-deb -I "$DEB_quince_common" conffiles 2>/dev/null | grep -qx /etc/quince/quince.conf \
  && pass "quince.conf is a conffile" || fail "quince.conf is a conffile" "$(dpkg-deb -I "$DEB_quince_common" conffiles 2>&1)"
dpkg-deb -I "$DEB_quince_common" postinst | grep -q "adduser --system" && pass "postinst makes the system user" \
  || fail "postinst makes the system user"
if command -v readelf >/dev/null; then
  ok=1
  for b in agent verifier tenant; do
    readelf -d "$R/usr/bin/quince-$b" | grep -q 'BIND_NOW' || ok=0
    readelf -h "$R/usr/bin/quince-$b" | grep -q 'DYN' || ok=0          # PIE
    readelf -s --wide "$R/usr/bin/quince-$b" | grep -q '__[a-z]*_chk' || ok=0   # fortified calls
  done
  [ $ok = 1 ] && pass "binaries are PIE, bind-now and fortified" || fail "binaries are PIE, bind-now and fortified"
fi
"$R/usr/bin/quince-tenant" --version | grep -q '^quince-tenant ' && pass "packaged tenant runs" || fail "packaged tenant runs"

# ---- make install: PREFIX and DESTDIR --------------------------------------------------------------
P=$QUINCE_TMP/prefix
if make -C "$QUINCE_ROOT" --no-print-directory BUILD=build/rel PREFIX="$P/usr" SYSCONFDIR="$P/etc" \
     STATEDIR="$P/var/lib/quince" install >"$QUINCE_TMP/install.log" 2>&1; then pass "make install PREFIX=..."
else fail "make install PREFIX=..." "$(tail -3 "$QUINCE_TMP/install.log" | tr '\n' ' ')"; fi
grep -q "^ExecStart=$P/usr/bin/quince-verifier " "$P/usr/lib/systemd/system/quince-verifier.service" \
  && pass "installed unit names PREFIX/bin" || fail "installed unit names PREFIX/bin"
if systemd-analyze verify "$P"/usr/lib/systemd/system/quince-*.service >"$QUINCE_TMP/verify.log" 2>&1; then
  pass "systemd-analyze verify on the installed units"
else fail "systemd-analyze verify on the installed units" "$(head -3 "$QUINCE_TMP/verify.log" | tr '\n' ' ')"; fi
[ "$(stat -c %a "$P/var/lib/quince")" = 700 ] && pass "state directory 0700" || fail "state directory 0700"
[ -f "$P/usr/share/man/man1/quince-tenant.1" ] && [ -f "$P/usr/share/man/man8/quince-agent.8" ] \
  && pass "man pages installed" || fail "man pages installed"
echo "# edited" >>"$P/etc/quince/quince.conf"
make -C "$QUINCE_ROOT" --no-print-directory BUILD=build/rel PREFIX="$P/usr" SYSCONFDIR="$P/etc" \
  STATEDIR="$P/var/lib/quince" install >>"$QUINCE_TMP/install.log" 2>&1
grep -q "^# edited" "$P/etc/quince/quince.conf" && pass "make install keeps an edited config" || fail "make install keeps an edited config"
DD=$QUINCE_TMP/destdir
make -C "$QUINCE_ROOT" --no-print-directory BUILD=build/rel DESTDIR="$DD" PREFIX=/opt/q install >>"$QUINCE_TMP/install.log" 2>&1
if [ -x "$DD/opt/q/bin/quince-agent" ] && [ -f "$DD/etc/quince/quince.conf" ] && [ -d "$DD/var/lib/quince" ] &&
   grep -q '^ExecStart=/opt/q/bin/quince-agent ' "$DD/opt/q/lib/systemd/system/quince-agent.service"; then
  pass "make install DESTDIR=... stages under DESTDIR with the final paths in the units"
else fail "make install DESTDIR=... stages under DESTDIR with the final paths in the units"; fi

# ---- a real install and purge ----------------------------------------------------------------------
if [ "${QUINCE_PKG_SYSTEM:-1}" = 0 ]; then echo "SKIP: system install (QUINCE_PKG_SYSTEM=0)"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: system install and purge (needs root)"; exit 0; fi
if getent passwd quince >/dev/null || [ -e /etc/quince ] || [ -e /var/lib/quince ] ||
   dpkg-query -W -f='${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null | grep -q installed; then
  echo "SKIP: system install and purge (Quince is already on this machine: user quince, /etc/quince or /var/lib/quince)"
  exit 0
fi
cleanup_pkgs() { dpkg --purge "${PKGS[@]}" >/dev/null 2>&1; }
trap cleanup_pkgs EXIT
if dpkg -i "$DEB_quince_common" "$DEB_quince_agent" "$DEB_quince_verifier" "$DEB_quince_tenant" \
     >"$QUINCE_TMP/dpkg.log" 2>&1; then pass "dpkg -i the four packages"
else fail "dpkg -i the four packages" "$(tail -3 "$QUINCE_TMP/dpkg.log" | tr '\n' ' ')"; exit 0; fi
getent passwd quince | grep -q ':/var/lib/quince:' && pass "system user quince" || fail "system user quince" "$(getent passwd quince)"
[ "$(stat -c '%U:%G %a' /var/lib/quince)" = "quince:quince 700" ] && pass "/var/lib/quince quince:quince 0700" \
  || fail "/var/lib/quince quince:quince 0700" "$(stat -c '%U:%G %a' /var/lib/quince)"
out=$(runuser -u quince -- /usr/bin/quince-verifier --version 2>&1)
[ "$out" = "quince-verifier 0.1.0" ] && pass "quince-verifier --version as the quince user" \
  || fail "quince-verifier --version as the quince user" "$out"
dpkg-query -W -f='${Conffiles}\n' quince-common | grep -q '/etc/quince/quince.conf' \
  && pass "dpkg lists quince.conf as a conffile" || fail "dpkg lists quince.conf as a conffile"
if systemd-analyze verify /lib/systemd/system/quince-agent.service /lib/systemd/system/quince-verifier.service \
     >"$QUINCE_TMP/verify2.log" 2>&1; then pass "systemd-analyze verify on the packaged units"
else fail "systemd-analyze verify on the packaged units" "$(head -3 "$QUINCE_TMP/verify2.log" | tr '\n' ' ')"; fi
# An edited conffile survives a reinstall.
echo "# site edit" >>/etc/quince/quince.conf
dpkg -i --force-confold "$DEB_quince_common" >>"$QUINCE_TMP/dpkg.log" 2>&1
grep -q '^# site edit' /etc/quince/quince.conf && pass "an edited quince.conf survives a reinstall" \
  || fail "an edited quince.conf survives a reinstall"
files=$(dpkg -L "${PKGS[@]}" 2>/dev/null | grep -vE '^/(\.|etc|lib|lib/systemd|lib/systemd/system|usr|usr/bin|usr/share|usr/share/doc|usr/share/man|usr/share/man/man[18])$')
if dpkg --purge "${PKGS[@]}" >>"$QUINCE_TMP/dpkg.log" 2>&1; then pass "dpkg --purge"; else fail "dpkg --purge" "$(tail -3 "$QUINCE_TMP/dpkg.log")"; fi
left=
for f in $files /etc/quince /var/lib/quince; do [ -e "$f" ] && left="$left $f"; done
getent passwd quince >/dev/null && left="$left user:quince"
getent group quince >/dev/null && left="$left group:quince"
dpkg-query -W -f='${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null | grep -qv '^not-installed$' && left="$left dpkg-status"
[ -z "$left" ] && pass "purge leaves nothing behind" || fail "purge leaves nothing behind" "$left"
trap - EXIT
