#!/bin/sh
# A guest mount over TLS-TCP, end to end: brokerfs listening on
# tls:127.0.0.1:PORT with a certificate for "localhost" from a throw-away
# CA, and mount.occfs (mountc) connecting to tls:localhost:PORT and
# verifying it with ca=.  Checks: files written and
# read back through the TLS mount are the host's bytes, a 4 MiB file
# included (frames of the largest size, zstd negotiated on TLS); a mount
# that trusts another CA is refused with a reason and nothing is mounted;
# a mount of tls:127.0.0.1:PORT, the same listener under a name the
# certificate does not carry, is refused too; the broker keeps serving the
# good mount meanwhile.  Needs root, /dev/fuse
# and openssl (skips otherwise).  Run by `make check`.
. "$(dirname "$0")/../broker/lib.sh"
command -v openssl >/dev/null || { echo "$me: no openssl, skipped"; exit 77; }

# A CA that signs the broker's certificate (DNS:localhost only), and a
# second one that signs nothing the broker uses.
(
	cd "$tmp" || exit 1
	for ca in ca rogue; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-nodes -keyout $ca.key -out $ca.pem -days 2 \
			-subj "/CN=occfs-test-$ca" || exit 1
	done
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout srv.key -out srv.csr -subj /CN=localhost || exit 1
	printf 'subjectAltName=DNS:localhost\n' >ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key \
		-CAcreateserial -out srv.pem -days 2 -extfile ext || exit 1
	chmod 600 srv.key
) >"$tmp/openssl.log" 2>&1 || { echo "$me: openssl failed"; cat "$tmp/openssl.log"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/root/fs1" "$tmp/m" "$tmp/bad"
start_broker --listen "tls:127.0.0.1:$port" --tls-cert "$tmp/srv.pem" \
	--tls-key "$tmp/srv.key" --root "$tmp/root" --token-pubkey "$tmp/pub"

# mnt ENDPOINT DIR CA: mount fs1 over TLS; mountc's output in $tmp/mount.out
mnt() {
	"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write \
		--out "$tmp/h" || exit 1
	"$mountc" -v "$1" "$2" -o "handle=$tmp/h,ca=$3" >"$tmp/mount.out" 2>&1
}

if mnt "tls:localhost:$port" "$tmp/m" "$tmp/ca.pem"; then
	mnts=$tmp/m
	ok "mounted over TLS ($(sed -n 's/.*features:/features:/p' "$tmp/mount.out"))"
else
	fail "the TLS mount failed"
	cat "$tmp/mount.out"
	finish
fi
grep -q ZSTD "$tmp/mount.out" && ok "zstd negotiated on TLS" ||
	fail "zstd not negotiated on TLS: $(cat "$tmp/mount.out")"

echo hello >"$tmp/m/small"
head -c 4194304 /dev/urandom >"$tmp/big.src"
cp "$tmp/big.src" "$tmp/m/big"
sync -f "$tmp/m"
[ "$(cat "$tmp/root/fs1/small")" = hello ] && ok "a small file reached the host" ||
	fail "small file on the host: '$(cat "$tmp/root/fs1/small" 2>&1)'"
cmp -s "$tmp/big.src" "$tmp/root/fs1/big" && ok "4 MiB reached the host intact" ||
	fail "the 4 MiB file differs on the host"
echo 3 >/proc/sys/vm/drop_caches
cmp -s "$tmp/big.src" "$tmp/m/big" && ok "and reads back intact through TLS" ||
	fail "the 4 MiB file reads back different"

# refused ENDPOINT CA WHAT: the mount must fail, saying why, and leave
# nothing mounted.
refused() {
	if mnt "$1" "$tmp/bad" "$2"; then
		mnts="$mnts $tmp/bad"
		fail "$3: the mount succeeded"
	elif grep -qi "certificate\|verify\|tls" "$tmp/mount.out"; then
		ok "$3: refused: $(head -1 "$tmp/mount.out")"
	else
		fail "$3: refused without a reason: $(cat "$tmp/mount.out")"
	fi
	mountpoint -q "$tmp/bad" && fail "$3: something is mounted" ||
		ok "$3: nothing mounted"
}
# Another CA: the broker's certificate does not verify.
refused "tls:localhost:$port" "$tmp/rogue.pem" "trusting another CA"
# The same listener under a name the certificate does not carry.
refused "tls:127.0.0.1:$port" "$tmp/ca.pem" "127.0.0.1, not in the certificate"

[ "$(cat "$tmp/m/small")" = hello ] && ok "the good mount still works" ||
	fail "the good mount broke"
umount "$tmp/m" && mnts= && ok "unmounted" || fail "umount failed"
finish
