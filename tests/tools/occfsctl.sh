#!/bin/sh
# occfsctl.sh - occfsctl token keygen/mint/verify as an operator uses
# them: outputs, file modes, exit statuses (0 ok, 1 refused, 2 usage).
# Run by `make check` from the build dir (top_builddir), or by hand.
set -u
top_builddir=${top_builddir:-.}
ctl=$top_builddir/tools/occfsctl
[ -x "$ctl" ] || { echo "occfsctl.sh: $ctl not built"; exit 77; }
t=$(mktemp -d /tmp/occfsctl-test.XXXXXX)
trap 'rm -rf "$t"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# expect STATUS CMD...: run CMD, output to $t/out and $t/err
expect() {
	want=$1
	shift
	"$@" >"$t/out" 2>"$t/err"
	got=$?
	if [ "$got" -eq "$want" ]; then ok; else
		bad "exit $got, want $want: $*"
		cat "$t/err"
	fi
}
grep_ok() { if grep -q -- "$1" "$2"; then ok; else bad "'$1' not in $2: $(cat "$2")"; fi; }
mode_is() { m=$(stat -c %a "$1"); if [ "$m" = "$2" ]; then ok; else bad "$1 mode $m, want $2"; fi; }

expect 0 "$ctl" token keygen --private "$t/k" --public "$t/k.pub"
mode_is "$t/k" 600
mode_is "$t/k.pub" 644
grep_ok "BEGIN PRIVATE KEY" "$t/k"
grep_ok "BEGIN PUBLIC KEY" "$t/k.pub"
expect 1 "$ctl" token keygen --private "$t/k" --public "$t/k2.pub"
[ ! -e "$t/k2.pub" ] && ok || bad "keygen left k2.pub behind"
expect 0 "$ctl" token keygen --private "$t/o" --public "$t/o.pub"

# mint to stdout prints the handle and nothing else
expect 0 "$ctl" token mint --key "$t/k" --fsid fs-01 --sid s1 --tenant acme --intent read
[ "$(wc -l <"$t/out")" -eq 1 ] && ok || bad "mint printed more than one line"
grep -qE '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$t/out" && ok || bad "not a compact JWT"
[ -s "$t/err" ] && bad "mint wrote to stderr" || ok
cp "$t/out" "$t/h-stdout"
expect 0 "$ctl" token verify --pubkey "$t/k.pub" "$t/h-stdout"
grep_ok "^sid=s1 filesystem_id=fs-01 tenant=acme intent=read exp=[0-9]* jti=[A-Za-z0-9_-]*$" "$t/out"

# --out: mode 0600 even over an existing wider file, verify via stdin
echo old >"$t/h"
chmod 644 "$t/h"
expect 0 "$ctl" token mint --key "$t/k" --fsid fs-01 --out "$t/h"
mode_is "$t/h" 600
[ -s "$t/out" ] && bad "mint --out printed something" || ok
expect 0 sh -c "'$ctl' token verify --pubkey '$t/k.pub' - <'$t/h'"
grep_ok "intent=write" "$t/out"
grep_ok "tenant=default" "$t/out"
ln -s "$t/h" "$t/link"
expect 1 "$ctl" token mint --key "$t/k" --fsid fs-01 --out "$t/link"

# refusals: exit 1 with the reason
expect 0 "$ctl" token mint --key "$t/k" --fsid fs-01 --exp 1000 --out "$t/old"
expect 1 "$ctl" token verify --pubkey "$t/k.pub" "$t/old"
grep_ok "occfsctl: handle refused: handle expired" "$t/err"
expect 0 "$ctl" token mint --key "$t/k" --fsid fs-01 --exp $(($(date +%s) - 5)) --out "$t/recent"
expect 1 "$ctl" token verify --pubkey "$t/k.pub" "$t/recent"
expect 0 "$ctl" token verify --pubkey "$t/k.pub" --leeway 60 "$t/recent"
expect 1 "$ctl" token verify --pubkey "$t/o.pub" "$t/h"
grep_ok "handle refused: handle signature does not verify" "$t/err"
expect 1 "$ctl" token verify --pubkey "$t/k.pub" --aud other "$t/h"
grep_ok "handle refused: handle audience mismatch" "$t/err"
expect 0 "$ctl" token mint --key "$t/k" --fsid fs-01 --aud other --out "$t/other"
expect 0 "$ctl" token verify --pubkey "$t/k.pub" --aud other "$t/other"
echo "not.a.jwt" >"$t/junk"
expect 1 "$ctl" token verify --pubkey "$t/k.pub" "$t/junk"
grep_ok "handle refused:" "$t/err"
expect 1 "$ctl" token verify --pubkey "$t/k" "$t/h"
grep_ok "not a PEM public key" "$t/err"
expect 1 "$ctl" token mint --key "$t/k.pub" --fsid fs-01
expect 1 "$ctl" token verify --pubkey "$t/nonexistent" "$t/h"

# usage errors: exit 2
expect 2 "$ctl"
expect 2 "$ctl" frobnicate
grep_ok "unknown command 'frobnicate'" "$t/err"
expect 2 "$ctl" token
expect 2 "$ctl" token frob
expect 2 "$ctl" token mint --key "$t/k"
expect 2 "$ctl" token mint --key "$t/k" --fsid ../x
expect 2 "$ctl" token mint --key "$t/k" --fsid fs --intent admin
expect 2 "$ctl" token mint --key "$t/k" --fsid fs --ttl -5
expect 2 "$ctl" token mint --key "$t/k" --fsid fs --ttl 10x
expect 2 "$ctl" token mint --key "$t/k" --fsid fs --bogus
grep_ok "unknown option" "$t/err"
expect 2 "$ctl" token verify --pubkey "$t/k.pub"
expect 2 "$ctl" token keygen --private "$t/x"
expect 0 "$ctl" --help
grep_ok "token mint" "$t/out"
expect 0 "$ctl" token --help
grep_ok "occfsctl token verify" "$t/out"
expect 0 "$ctl" token mint --help

echo "occfsctl.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
