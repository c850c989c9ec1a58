#!/bin/bash
# tests/s3/s3fs-interop.sh - a bucket written by occfs reads correctly
# through s3fs-fuse (Debian's 1.90), and the other way round.
#
# Files (small, and multipart-sized), directories (empty ones too),
# symlinks, modes, owners, mtimes and user.* xattrs are written on one side
# and described on the other with the same listing: path, type, mode,
# uid:gid, size, mtime (files), symlink target, md5 and xattrs.  Empty
# directories must be "name/" marker objects.  Hard links fail fast with an
# errno and leave no object behind.
#
#   sudo tests/s3/s3fs-interop.sh
. "$(dirname "$0")/lib.sh"
s3t_init interop
command -v s3fs >/dev/null || { echo "s3fs-interop: s3fs not installed" >&2; exit 77; }

s3t_broker_start b || s3t_abort "brokerfs with the s3 backend did not start"

s3fs_mount() { # FSID DIR
	mkdir -p "$2"
	s3fs "$S3_BUCKET:/$S3T_PREFIX/$1" "$2" -o url="$S3_ENDPOINT" \
		-o use_path_request_style,sigv4,endpoint=us-east-1 \
		-o passwd_file="$S3T_WORK/passwd",use_xattr,allow_other \
		-o max_stat_cache_size=0 >>"$S3T_WORK/s3fs.log" 2>&1 && mountpoint -q "$2"
}

# The same description on both sides; directories' sizes and mtimes vary
# between implementations and are left out.
describe() { # DIR
	(
		cd "$1" || exit 1
		find . -mindepth 1 | LC_ALL=C sort | while read -r p; do
			t=$(stat -c %F "$p")
			case "$t" in
			directory) stat -c '%n dir %a %u:%g' "$p" ;;
			"symbolic link") echo "$p -> $(readlink "$p")" ;;
			*) echo "$(stat -c '%n %F %a %u:%g %s %Y' "$p") $(md5sum <"$p" | cut -c1-12)" ;;
			esac
			getfattr -h -d -m '^user\.' "$p" 2>/dev/null | grep -v '^#' | grep . |
				sed 's/^/    /'
		done
	)
}

populate() { # DIR: the same tree, whichever side writes it
	local d=$1
	mkdir "$d/empty" "$d/tree" "$d/tree/sub" "$d/private" &&
		s3t_gen 11 123456 >"$d/tree/sub/data" &&
		s3t_gen 12 12000000 >"$d/big" &&
		echo "hello" >"$d/f" &&
		printf '' >"$d/zero" &&
		ln -s f "$d/link" && ln -s /etc/hostname "$d/abs" &&
		ln -s tree/sub "$d/dirlink" &&
		chmod 0640 "$d/f" && chmod 0700 "$d/private" && chmod 0751 "$d/tree/sub/data" &&
		chown 1234:5678 "$d/f" && chown 42:43 "$d/tree/sub/data" &&
		setfattr -n user.color -v blue "$d/f" &&
		setfattr -n user.bin -v 0x00ff10 "$d/tree/sub/data" &&
		touch -d '2011-11-11 11:11:11' "$d/f" "$d/zero" &&
		touch -d '2001-02-03 04:05:06' "$d/tree/sub/data" "$d/big"
}

# ---- occfs writes, s3fs reads ----------------------------------------------------
O=$S3T_WORK/occfs-i
S=$S3T_WORK/s3fs-i
s3t_mount b I "$O" || s3t_abort "mount of fsid I"
populate "$O" 2>"$S3T_WORK/populate-occfs.err"
s3t_eq "occfs: the tree could be written" "" "$(cat "$S3T_WORK/populate-occfs.err")"
describe "$O" >"$S3T_WORK/occfs-view"
s3t_umount "$O"
s3t_s3 list "$S3T_PREFIX/I/" >"$S3T_WORK/keys-i"
s3t_check "occfs: the empty directory is a marker object empty/" \
	grep -q "^$S3T_PREFIX/I/empty/ 0\$" "$S3T_WORK/keys-i"
s3t_check "occfs: the symlink is an object whose body is the target" \
	[ "$(s3t_s3 get "$(s3t_key I link)" 2>&1)" = f ]
s3t_s3 head "$(s3t_key I f)" | sed 's/^/# f: /'
s3t_check "occfs: mode and owner are in x-amz-meta-mode/uid/gid" \
	s3t_has_meta "$(s3t_key I f)" mode 33184
s3t_check "occfs: uid in x-amz-meta-uid" s3t_has_meta "$(s3t_key I f)" uid 1234
s3t_check "occfs: gid in x-amz-meta-gid" s3t_has_meta "$(s3t_key I f)" gid 5678
if s3fs_mount I "$S"; then
	describe "$S" >"$S3T_WORK/s3fs-view"
	if diff -u "$S3T_WORK/occfs-view" "$S3T_WORK/s3fs-view" >"$S3T_WORK/diff-i"; then
		s3t_ok "occfs -> s3fs: files, dirs, symlinks, modes, owners, mtimes, xattrs agree"
	else
		s3t_fail "occfs -> s3fs: the views differ (- occfs, + s3fs):"
		sed 's/^/#   /' "$S3T_WORK/diff-i" | head -60
	fi
	s3t_umount "$S"
else
	s3t_fail "occfs -> s3fs: s3fs cannot mount $S3T_PREFIX/I (see $S3T_WORK/s3fs.log)"
fi

# ---- s3fs writes, occfs reads ----------------------------------------------------
# s3fs wants the directory it mounts to exist: a marker as s3fs makes it.
s3t_s3 put "$S3T_PREFIX/J/" /dev/null mode=16877 uid=0 gid=0 || s3t_abort "marker J/"
S=$S3T_WORK/s3fs-j
O=$S3T_WORK/occfs-j
if s3fs_mount J "$S"; then
	populate "$S" 2>"$S3T_WORK/populate-s3fs.err"
	s3t_eq "s3fs: the tree could be written" "" "$(cat "$S3T_WORK/populate-s3fs.err")"
	describe "$S" >"$S3T_WORK/s3fs-view-j"
	s3t_umount "$S"
	s3t_mount b J "$O" || s3t_abort "mount of fsid J"
	describe "$O" >"$S3T_WORK/occfs-view-j"
	if diff -u "$S3T_WORK/s3fs-view-j" "$S3T_WORK/occfs-view-j" >"$S3T_WORK/diff-j"; then
		s3t_ok "s3fs -> occfs: files, dirs, symlinks, modes, owners, mtimes, xattrs agree"
	else
		s3t_fail "s3fs -> occfs: the views differ (- s3fs, + occfs):"
		sed 's/^/#   /' "$S3T_WORK/diff-j" | head -60
	fi
	# and occfs can keep working on s3fs's objects
	echo more >>"$O/f" && mv "$O/tree" "$O/tree2" && rmdir "$O/empty"
	s3t_eq "occfs edits s3fs's tree: appended file in S3" "$(printf 'hello\nmore\n')" \
		"$(s3t_s3 get "$(s3t_key J f)" 2>&1)"
	s3t_check "occfs edits s3fs's tree: renamed directory's file moved" \
		s3t_s3 exists "$(s3t_key J tree2/sub/data)"
	s3t_check "occfs edits s3fs's tree: old name gone" \
		s3t_absent "$(s3t_key J tree/sub/data)"
else
	s3t_fail "s3fs -> occfs: s3fs cannot mount $S3T_PREFIX/J (see $S3T_WORK/s3fs.log)"
	s3t_mount b J "$O" || s3t_abort "mount of fsid J"
fi

# ---- hard links: refused fast, nothing stored ----------------------------------
echo x >"$O/lsrc"
t0=$(date +%s)
r=$("$S3T_PYTHON" -c '
import errno, os, sys
try:
    os.link(sys.argv[1] + "/lsrc", sys.argv[1] + "/ldst"); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$O")
el=$(($(date +%s) - t0))
case "$r" in
EPERM | ENOTSUP | EOPNOTSUPP | EMLINK | EXDEV) s3t_ok "link(2) fails with $r" ;;
*) s3t_fail "link(2): expected a clear errno, got $r" ;;
esac
s3t_check "link(2) fails fast (${el}s)" [ "$el" -le 2 ]
s3t_check "link(2) left no object" s3t_absent "$(s3t_key J ldst)"
s3t_done
