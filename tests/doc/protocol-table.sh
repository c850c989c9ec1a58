#!/bin/sh
# doc/protocol.md must list every operation exactly as common/proto.h
# defines it (wire number, name, request and reply schema).
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
hdr=$top_srcdir/common/proto.h
doc=$top_srcdir/doc/protocol.md
ok=0
bad=0
for row in $(grep -E '^\s+X\(' "$hdr" |
	sed -E 's/^\s+X\(([A-Z_]+), ([0-9]+), "([^"]*)", "([^"]*)".*/\2:\1:\3:\4/'); do
	IFS=: read -r num name req rep <<ROW
$row
ROW
	[ -n "$req" ] && req="\`$req\`" || req="—"
	[ -n "$rep" ] && rep="\`$rep\`" || rep="—"
	if grep -qF "| $num | $name | $req | $rep |" "$doc"; then
		ok=$((ok + 1))
	else
		echo "doc/protocol.md: no row for $num $name $req $rep"
		bad=$((bad + 1))
	fi
done
echo "$ok passed, $bad failed"
[ $bad = 0 ]
