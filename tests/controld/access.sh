#!/bin/sh
# Who may use the operator socket, and audit failing closed: with the
# default mode 0600 a non-root user cannot connect; with the socket opened
# up, SO_PEERCRED identifies a non-operator and the request is refused with
# a clear error (and recorded); a policy reload that lists the uid lets it
# in; with the audit spool on a full filesystem every operator action is
# refused because its record cannot be written.
. "$(dirname "$0")/lib.sh"
command -v setpriv >/dev/null || { echo "$me: no setpriv, skipped"; exit 77; }
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

start_ctld
chmod 711 "$tmp"
nobody "$ctl" session list 2>"$tmp/e" && fail "nobody used the 0600 socket"
grep -q "cannot reach occfs-controld.*Permission denied" "$tmp/e" &&
	ok "0600 socket: $(cat "$tmp/e")" || fail "0600 refusal: $(cat "$tmp/e")"

chmod 666 "$OSOCK"
for cmd in "session list" "revoke-all" "session create --fsid ws-x --handle-out /tmp/nobody.h"; do
	nobody "$ctl" $cmd 2>"$tmp/e" && fail "nobody ran '$cmd'"
	grep -q "EACCES: uid 65534 (gid 65534) is not an operator" "$tmp/e" ||
		fail "'$cmd' refusal: $(cat "$tmp/e")"
done
ok "non-operator peer refused: $(cat "$tmp/e")"
"$ctl" session status | grep -q "kill-switch off" || fail "nobody's revoke-all had an effect"
grep -rqa '"operation":"session.revoke-all".*"status_code":"EACCES"\|"status_code":"EACCES".*"operation":"session.revoke-all"' "$tmp/spool" &&
	ok "the refused attempt is in the audit spool" ||
	grep -rqa 'session.revoke-all' "$tmp/spool" || fail "refused attempt not audited"

sed -i 's/  uids: \[0\]/  uids: [0, 65534]/' "$tmp/pol/20-tokens.yaml"
kill -HUP "$ctld_pid"
wait_for 5 grep -q "policy reloaded" "$tmp/controld.log" || fail "reload"
nobody "$ctl" session list >"$tmp/o" 2>&1 && ok "uid listed in operators is let in" ||
	fail "listed operator refused: $(cat "$tmp/o")"
stop_ctld

# ---- audit fails closed ------------------------------------------------------
mkdir -p "$tmp/afs"
rm -f "$OSOCK"
mount -t tmpfs -o size=1m tmpfs "$tmp/afs" || { echo "$me: no tmpfs"; finish; }
mnts="$mnts $tmp/afs"
"$ctld" -f --policy "$tmp/pol" --state "$tmp/state" --operator-socket "$OSOCK" \
	--control-socket "$CSOCK" --audit-spool "$tmp/afs/spool" 2>>"$tmp/controld.log" &
ctld_pid=$!
wait_for 10 "$ctl" session status || fail "controld on the small spool"
"$ctl" session list >/dev/null || fail "list with a working spool"
dd if=/dev/zero of="$tmp/afs/fill" bs=4k 2>/dev/null
# records still fit in the spool segment's last page: use it up
n=0
while "$ctl" session status >/dev/null 2>&1 && [ $n -lt 50 ]; do n=$((n + 1)); done
for cmd in "session list" "revoke-all" "session create --fsid ws-y --handle-out $tmp/h/y"; do
	"$ctl" $cmd 2>"$tmp/e" && fail "'$cmd' ran without an audit record"
	grep -q "EACCES: audit unavailable" "$tmp/e" || fail "'$cmd': $(cat "$tmp/e")"
done
ok "actions refused with a full audit spool: $(cat "$tmp/e")"
[ -e "$tmp/h/y" ] && fail "a handle was written without an audit record"
rm -f "$tmp/afs/fill"
"$ctl" session status | grep -q "kill-switch off" ||
	fail "the refused revoke-all took effect (or the spool did not recover)"
finish
