"""s3bench.py - the s3 half of tests/bench: occfs (s3 backend), s3fs and
rclone on the same throw-away radosgw, in one run.

Targets, each on its own prefix of the same bucket:

  occfs          brokerfs --backend s3 (STS on) mounted through mount.occfs
  s3fs           Debian's s3fs 1.90 (path-style, sigv4, notsup_compat_dir,
                 enable_noobj_cache: the defaults of later releases)
  rclone-off     rclone 1.60 mount, --vfs-cache-mode off
  rclone-writes  rclone 1.60 mount, --vfs-cache-mode writes
  occfs-nosts    occfs on the broker's base credential, no STS (only when
                 named in --targets: what the per-session credential costs)
  occfs-b        occfs from a second build, $OCCFS_BIN_B (only when named
                 in --targets: before/after figures in one run)

A target that cannot be mounted (e.g. occfs before its s3 backend works) is
reported as unavailable and the others still run.  A workload that fails
on a target (rclone-off cannot open files read-write) is reported as
"error" with the reason.  The last workload kills each daemon right after a
close and counts the files that are not in S3 with the right bytes (read
with tests/s3/s3cli.py): the data a peer loses.

With --count-requests every target talks to radosgw through
tests/s3/faultproxy.py (passing everything) and the report counts the S3
requests each workload made on each target, by method: exact figures
where timings are noisy (the proxy's extra hop makes its timings unfit
for ratios).

With --s3-latency MS every target talks to radosgw through the same proxy,
which holds each reply's head for MS milliseconds after radosgw answered,
then relays the body as it comes: the round trip of a server that is not
on loopback (S3 in a region answers a
small request in 10 to 30 ms), where a request a target saves is worth
that much more.  The timings are reported as usual; all targets pay the
same per request.

Called by bench.py with --s3; see doc/benchmarks.md.  OCCFS_BIN names a
build directory to take brokerfs and occfsctl from (else PATH).
"""
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
S3DIR = os.path.join(os.path.dirname(HERE), "s3")
ALL = ["occfs", "s3fs", "rclone-off", "rclone-writes"]


def occfs_bin(name, sub, var="OCCFS_BIN"):
    """A program from the build directory $var, else from PATH."""
    b = os.environ.get(var)
    return os.path.join(b, sub) if b else name


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def wait_for(pred, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def mounted(d):
    return subprocess.run(["mountpoint", "-q", d]).returncode == 0


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return None


class S3Targets:
    """Starts radosgw and mounts every wanted target on it."""

    def __init__(self, work, wanted, count=False, latency_ms=0):
        self.work = work
        self.count = count
        self.latency_ms = latency_ms
        self.proxy_log = None
        self.wanted = wanted
        self.dirs = {}
        self.prefix = {}
        self.pids = {}
        self.procs = []
        self.mounts = []
        self.unavailable = {}
        self.rgw = os.path.join(work, "rgw")
        self.env = None

    def setup(self):
        r = subprocess.run([os.path.join(S3DIR, "rgw-start"), self.rgw])
        if r.returncode != 0:
            sys.exit("bench: radosgw cannot run here (rgw-start exit %d)" % r.returncode)
        self.env = dict(os.environ)
        with open(os.path.join(self.rgw, "env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.env[k] = v
        self.env.pop("AWS_CA_BUNDLE", None)
        if self.count or self.latency_ms:
            self._start_proxy()
        e = self.env
        umask = os.umask(0o077)
        with open(os.path.join(self.work, "credentials"), "w") as f:
            f.write("access_key = %s\nsecret_key = %s\n" % (e["S3_ACCESS_KEY"], e["S3_SECRET_KEY"]))
        with open(os.path.join(self.work, "passwd"), "w") as f:
            f.write("%s:%s\n" % (e["S3_ACCESS_KEY"], e["S3_SECRET_KEY"]))
        with open(os.path.join(self.work, "rclone.conf"), "w") as f:
            f.write("[rgw]\ntype = s3\nprovider = Ceph\naccess_key_id = %s\n"
                    "secret_access_key = %s\nendpoint = %s\nregion = %s\n"
                    % (e["S3_ACCESS_KEY"], e["S3_SECRET_KEY"], e["S3_ENDPOINT"],
                       e["S3_REGION"]))
        os.umask(umask)
        for t in self.wanted:
            try:
                getattr(self, "_setup_" + t.replace("-", "_"))()
            except Exception as ex:  # report, and bench the others
                self.unavailable[t] = str(ex).splitlines()[0][:200]
                print("bench: %s unavailable: %s" % (t, self.unavailable[t]), flush=True)

    def _start_proxy(self):
        """Every target's S3 traffic through one logging proxy, which holds
        each reply for latency_ms when that is set."""
        up = self.env["S3_ENDPOINT"].split("://", 1)[1].rstrip("/")
        ctl = os.path.join(self.work, "proxy.ctl")
        with open(ctl, "w") as f:
            if self.latency_ms:
                f.write("latency delay=%g\n" % (self.latency_ms / 1000.0))
            else:
                f.write("pass\n")
        self.proxy_log = os.path.join(self.work, "proxy.log")
        port_file = os.path.join(self.work, "proxy.port")
        p = subprocess.Popen([sys.executable, os.path.join(S3DIR, "faultproxy.py"),
                              "--upstream", up, "--control", ctl, "--log", self.proxy_log,
                              "--port-file", port_file], stderr=subprocess.DEVNULL)
        self.procs.append(p)
        if not wait_for(lambda: os.path.exists(port_file) and os.path.getsize(port_file)):
            sys.exit("bench: the S3 proxy did not start")
        with open(port_file) as f:
            self.env["S3_ENDPOINT"] = "http://127.0.0.1:%s" % f.read().strip()

    def log_lines(self):
        with open(self.proxy_log) as f:
            return f.readlines()

    def _mnt(self, name):
        d = os.path.join(self.work, "mnt-" + name)
        os.makedirs(d)
        return d

    def _setup_occfs(self):
        self._start_occfs("occfs", True)

    def _setup_occfs_nosts(self):
        """The broker on its base credential (no STS): shows what the
        per-session credential costs on the server."""
        self._start_occfs("occfs-nosts", False)

    def _setup_occfs_b(self):
        """A second build's broker, for before/after rows in one run."""
        if not os.environ.get("OCCFS_BIN_B"):
            raise RuntimeError("occfs-b needs OCCFS_BIN_B (a second build directory)")
        self._start_occfs("occfs-b", True, "OCCFS_BIN_B")

    def _start_occfs(self, name, sts, binvar="OCCFS_BIN"):
        w, e = self.work, self.env
        key, pub = os.path.join(w, "key"), os.path.join(w, "pub")
        sock = os.path.join(w, name + ".sock")
        handle = os.path.join(w, name + ".handle")
        mnt = self._mnt(name)
        self.prefix[name] = "bench-%s/bench" % name
        ctl = occfs_bin("occfsctl", "tools/occfsctl")
        if not os.path.exists(key):
            sh([ctl, "token", "keygen", "--private", key, "--public", pub])
        sh([ctl, "token", "mint", "--key", key, "--fsid", "bench",
            "--intent", "write", "--ttl", "86400", "--out", handle])
        log = open(os.path.join(w, name + ".log"), "w")
        os.makedirs(os.path.join(w, name + "-root"))
        sts_args = ["--s3-sts-endpoint", e["S3_ENDPOINT"],
                    "--s3-role-arn", e["S3_ROLE_ARN"]] if sts else []
        p = subprocess.Popen(
            [occfs_bin("brokerfs", "brokerfs/brokerfs", binvar), "-f", "--listen", "unix:" + sock, "--token-pubkey", pub,
             "--root", os.path.join(w, name + "-root"), "--backend", "s3",
             "--staging-dir", os.path.join(w, name + "-staging"),
             "--s3-endpoint", e["S3_ENDPOINT"], "--s3-region", e["S3_REGION"],
             "--s3-bucket", e["S3_BUCKET"], "--s3-prefix", "bench-" + name,
             "--s3-credentials", os.path.join(w, "credentials"), "--s3-rgw-quirks"]
            + sts_args, stderr=log)
        self.procs.append(p)
        self.pids[name] = p.pid
        if not wait_for(lambda: os.path.exists(sock) or p.poll() is not None) \
                or p.poll() is not None:
            log.flush()
            raise RuntimeError("brokerfs --backend s3 did not start: " +
                               open(log.name).read().strip()[-200:])
        sh(["mount", "-t", "occfs", "unix:" + sock, mnt, "-o", "handle=" + handle])
        self.mounts.append(mnt)
        self.dirs[name] = mnt

    def _setup_s3fs(self):
        e = self.env
        mnt = self._mnt("s3fs")
        self.prefix["s3fs"] = "bench-s3fs"
        # s3fs mounts an existing directory: its marker, as s3fs makes them
        self.s3cli(["put", "bench-s3fs/", "/dev/null", "mode=16877", "uid=0", "gid=0"])
        # -f: in the foreground, so the pid is the one we started
        log = open(os.path.join(self.work, "s3fs.log"), "w")
        p = subprocess.Popen(
            ["s3fs", "-f", "%s:/bench-s3fs" % e["S3_BUCKET"], mnt, "-o",
             "url=%s,use_path_request_style,sigv4,endpoint=%s,passwd_file=%s,"
             "notsup_compat_dir,enable_noobj_cache,allow_other"
             % (e["S3_ENDPOINT"], e["S3_REGION"], os.path.join(self.work, "passwd"))],
            stdout=log, stderr=log)
        self.procs.append(p)
        self.pids["s3fs"] = p.pid
        if not wait_for(lambda: mounted(mnt) or p.poll() is not None) or not mounted(mnt):
            raise RuntimeError("s3fs did not mount (see %s)" % log.name)
        self.mounts.append(mnt)
        self.dirs["s3fs"] = mnt

    def _rclone(self, name, mode):
        e = self.env
        mnt = self._mnt(name)
        self.prefix[name] = "bench-" + name
        log = open(os.path.join(self.work, name + ".log"), "w")
        p = subprocess.Popen(
            ["rclone", "mount", "--config", os.path.join(self.work, "rclone.conf"),
             "rgw:%s/bench-%s" % (e["S3_BUCKET"], name), mnt,
             "--vfs-cache-mode", mode, "--cache-dir", os.path.join(self.work, "cache-" + name),
             "--allow-other"],
            stdout=log, stderr=log, env=self.env)
        self.procs.append(p)
        self.pids[name] = p.pid
        if not wait_for(lambda: mounted(mnt) or p.poll() is not None) or not mounted(mnt):
            raise RuntimeError("rclone mount did not come up (see %s)" % log.name)
        self.mounts.append(mnt)
        self.dirs[name] = mnt

    def _setup_rclone_off(self):
        self._rclone("rclone-off", "off")

    def _setup_rclone_writes(self):
        self._rclone("rclone-writes", "writes")

    def s3cli(self, args, **kw):
        return subprocess.run([sys.executable, os.path.join(S3DIR, "s3cli.py")] + args,
                              env=self.env, check=True, capture_output=True, **kw).stdout

    def object_md5(self, key):
        r = subprocess.run([sys.executable, os.path.join(S3DIR, "s3cli.py"), "get", key],
                           env=self.env, capture_output=True)
        return hashlib.md5(r.stdout).hexdigest() if r.returncode == 0 else None

    def gc(self):
        """Free deleted objects now: radosgw's garbage collection waits
        hours by default, and the test OSD keeps everything in 2 GiB of
        RAM, which a full run would otherwise fill (radosgw then stalls)."""
        subprocess.run(["radosgw-admin", "-c", self.env["S3_CEPH_CONF"], "gc", "process",
                        "--include-all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def abort(self, t):
        """A target hangs: abort its FUSE connection so that nothing waits on
        it any more, and leave it out from now on."""
        ctl = "/sys/fs/fuse/connections"
        mounted_here = False
        if not os.path.exists(os.path.join(ctl, "0")) and not os.listdir(ctl):
            mounted_here = subprocess.run(["mount", "-t", "fusectl", "none", ctl]).returncode == 0
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == self.dirs[t]:
                    minor = fields[2].split(":")[1]
                    try:
                        with open(os.path.join(ctl, minor, "abort"), "w") as a:
                            a.write("1")
                    except OSError:
                        pass
        if mounted_here:
            subprocess.run(["umount", ctl])
        self.unavailable[t] = "hung during the run; its FUSE connection was aborted"
        del self.dirs[t]

    def rss(self):
        return {t: peak_rss_kib(self.pids.get(t)) for t in self.dirs}

    def kill_after_close(self, t, n=10):
        """Write n files, kill -9 the daemon right after the last close,
        count how many are in S3 with the right bytes."""
        d = os.path.join(self.dirs[t], "durable")
        os.makedirs(d, exist_ok=True)
        want = {}
        for i in range(n):
            data = random.Random(i).randbytes(256 * 1024)
            with open(os.path.join(d, "f%02d" % i), "wb") as f:
                f.write(data)
            want["%s/durable/f%02d" % (self.prefix[t], i)] = hashlib.md5(data).hexdigest()
        pid = self.pids.get(t)
        if pid:
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["umount", "-l", self.dirs[t]])
        self.mounts.remove(self.dirs[t])
        return sum(1 for k, m in want.items() if self.object_md5(k) == m), n

    def teardown(self):
        for m in reversed(self.mounts):
            if subprocess.run(["umount", m], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", m])
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.env:
            subprocess.run([os.path.join(S3DIR, "rgw-stop"), self.rgw])


# ---- workloads: each returns (value, unit, higher_is_better) ---------------

def ttfb(d, drop_caches):
    """Open and read the first 4 KiB of a 32 MiB file written earlier."""
    p = os.path.join(d, "ttfb")
    with open(p, "wb") as f:
        f.write(random.Random(7).randbytes(32 << 20))
        f.flush()
        os.fsync(f.fileno())
    drop_caches()
    t0 = time.monotonic()
    with open(p, "rb") as f:
        f.read(4096)
    el = time.monotonic() - t0
    os.unlink(p)
    return el * 1000, "ms", False


def one_byte_fsync(d, n=20):
    t0 = time.monotonic()
    for i in range(n):
        fd = os.open(os.path.join(d, "one%02d" % i), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, b"x")
        os.fsync(fd)
        os.close(fd)
    el = time.monotonic() - t0
    for i in range(n):
        os.unlink(os.path.join(d, "one%02d" % i))
    return el / n * 1000, "ms", False


def rename_pattern(d, n=1000):
    """Editors and git: write a temporary file, then rename it over the target."""
    sub = os.path.join(d, "edit")
    os.makedirs(sub)
    target = os.path.join(sub, "doc.txt")
    t0 = time.monotonic()
    for i in range(n):
        tmp = os.path.join(sub, ".doc.txt.tmp%d" % i)
        with open(tmp, "wb") as f:
            f.write(b"version %d\n" % i)
        os.rename(tmp, target)
    el = time.monotonic() - t0
    with open(target, "rb") as f:
        ok = f.read() == b"version %d\n" % (n - 1)
    shutil.rmtree(sub)
    if not ok:
        raise RuntimeError("the last version did not survive the renames")
    return n / el, "renames/s", True


def git_clone(d, repo):
    dst = os.path.join(d, "clone")
    t0 = time.monotonic()
    sh(["git", "clone", "-q", "--no-hardlinks", repo, dst],
       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sh(["sync", "-f", dst])
    el = time.monotonic() - t0
    sh(["git", "-C", dst, "fsck", "--no-progress"], stdout=subprocess.DEVNULL,
       stderr=subprocess.PIPE)
    shutil.rmtree(dst)
    return el, "s", False


def make_repo(work, tarball):
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    sh(["tar", "-xf", tarball, "-C", repo])
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@e",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@e")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        sh(["git", "-C", repo] + cmd, env=env, stdout=subprocess.DEVNULL)
    return repo


def workloads(b, quick, tarball, repo):
    """The s3 workload list; b is bench.py's module (fio, create_files, ...)."""
    size = "16M" if quick else "64M"
    rt = 3 if quick else 8
    w = []
    for rw, label in (("write", "seq write"), ("read", "seq read")):
        for bs in ("256k", "4M"):
            for jobs in (1, 4):
                w.append(("%s %s x%d" % (label, bs, jobs),
                          (lambda d, rw=rw, bs=bs, jobs=jobs:
                           b.fio(d, rw, bs, jobs, size, rt, time_based=False))))
    w.append(("time to first byte", lambda d: ttfb(d, b.drop_caches)))
    w.append(("1-byte file + fsync", one_byte_fsync))
    w.append(("create 1000 files", b.create_files))
    w.append(("ls -l 1000", lambda d: b.ls_l(d, 1000)))
    if not quick:
        w.append(("ls -l 10000", lambda d: b.ls_l(d, 10000)))
    w.append(("rename over 1000x", lambda d: rename_pattern(d, 200 if quick else 1000)))
    w.append(("tar -x source tree", lambda d: b.tar_x(d, tarball)))
    w.append(("git clone", lambda d: git_clone(d, repo)))
    return w


def why(ex):
    """One line on why a workload failed: the tool's last words if any."""
    out = b""
    if isinstance(ex, subprocess.CalledProcessError):
        out = (ex.stderr or b"") or (ex.stdout or b"")
        if isinstance(out, str):
            out = out.encode()
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    if lines:
        return lines[-1].strip()[:160]
    msg = str(ex).strip().splitlines()
    return (msg[-1] if msg else type(ex).__name__)[:160]


def timed(fn, d, timeout):
    """Run fn(d) in a child process: a workload stuck on a hung mount must
    not stop the benchmark.  Returns fn's result; raises on error/timeout."""
    rd, wr = multiprocessing.Pipe(duplex=False)

    def child():
        try:
            wr.send(("ok", fn(d)))
        except BaseException as ex:  # report anything to the parent
            wr.send(("error", why(ex)))

    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    wr.close()
    if not rd.poll(timeout):
        p.kill()
        raise TimeoutError("timed out after %d s" % timeout)
    kind, val = rd.recv()
    p.join()
    if kind == "error":
        raise RuntimeError(val)
    return val


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return "%.3g" % v if v < 100 else "%.0f" % v


def count_of(lines, target):
    """Requests of target among proxy log lines, by method: those naming
    its prefix, and those naming none (STS, ListBuckets)."""
    own = re.compile(r"bench-%s(/|%%2F)" % re.escape(target))
    other = re.compile(r"bench-[a-z0-9-]+(/|%2F)")
    n = {}
    for ln in lines:
        f = ln.split()
        if len(f) < 3:
            continue
        if own.search(f[2]) or not other.search(f[2]):
            n[f[1]] = n.get(f[1], 0) + 1
    return n


def run(b, args, work):
    wanted = args.targets.split(",") if args.targets else ALL
    count = getattr(args, "count_requests", False)
    latency = getattr(args, "s3_latency", 0) or 0
    t = S3Targets(work, wanted, count, latency)
    counts = []
    results = []
    losses = {}
    rss = {}
    try:
        t.setup()
        live = [x for x in wanted if x in t.dirs]
        tarball = os.path.join(work, "src.tar")
        # a smaller tree than the local run: every file is several requests
        sh(["tar", "-cf", tarball, "-C", "/usr/include",
            "linux/netfilter" if args.quick else "linux"])
        repo = make_repo(work, tarball)
        for name, fn in workloads(b, args.quick, tarball, repo):
            if args.only and not any(name.startswith(p) for p in args.only.split(",")):
                continue
            row = {"workload": name, "errors": {}}
            for tgt in list(live):
                if tgt not in t.dirs:
                    continue
                mark = len(t.log_lines()) if count else 0
                try:
                    v, unit, hib = timed(fn, t.dirs[tgt], 300 if args.quick else 900)
                    if count:
                        time.sleep(1.5)  # what a daemon sends just after
                        n = count_of(t.log_lines()[mark:], tgt)
                        counts.append((name, tgt, n))
                        print("bench: %-22s %-13s %d S3 requests (%s)" % (
                            name, tgt, sum(n.values()),
                            ", ".join("%s %d" % kv for kv in sorted(n.items()))), flush=True)
                    row[tgt] = v
                    row["unit"], row["higher_is_better"] = unit, hib
                    print("bench: %-22s %-13s %10s %s" % (name, tgt, fmt(v), unit), flush=True)
                except Exception as ex:
                    row["errors"][tgt] = why(ex)
                    if isinstance(ex, TimeoutError):
                        t.abort(tgt)
                    print("bench: %-22s %-13s error: %s" % (name, tgt, row["errors"][tgt]),
                          flush=True)
            results.append(row)
            t.gc()
        rss = t.rss()
        for tgt in [x for x in live if x in t.dirs and not count]:
            try:
                losses[tgt] = t.kill_after_close(tgt)
            except Exception as ex:
                losses[tgt] = str(ex)[:120]
    finally:
        t.teardown()
    if count:
        report_counts(wanted, counts)
        return
    if latency:
        print()
        print("Every S3 reply was held %g ms at the proxy (--s3-latency)." % latency)
    report(wanted, t.unavailable, results, rss, losses, args.json)


def report_counts(wanted, counts):
    print()
    print("S3 requests per workload (through the counting proxy):")
    hdr = "| workload | " + " | ".join(wanted) + " |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    rows = []
    for name, _, _ in counts:
        if name not in rows:
            rows.append(name)
    for name in rows:
        cells = []
        for tg in wanted:
            n = [c for w, t, c in counts if w == name and t == tg]
            cells.append("%d (%s)" % (sum(n[0].values()), " ".join(
                "%s %d" % kv for kv in sorted(n[0].items()))) if n else "-")
        print("| %s | %s |" % (name, " | ".join(cells)))


def report(wanted, unavailable, results, rss, losses, json_path):
    peers = [p for p in wanted if p != "occfs"]

    def ratio(row, peer):
        a, p = row.get("occfs"), row.get(peer)
        if not a or not p or "unit" not in row:
            return None
        return a / p if row["higher_is_better"] else p / a

    print()
    for tgt, why in unavailable.items():
        print("%s: unavailable (%s)" % (tgt, why))
    print("Ratios are speed-ups of occfs over the peer (>1: occfs is faster).")
    hdr = "| workload | unit | " + " | ".join(wanted) + " | " + \
        " | ".join("occfs/" + p for p in peers) + " |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for row in results:
        cells = []
        for tg in wanted:
            if tg in unavailable:
                cells.append("n/a")
            elif tg in row["errors"]:
                cells.append("error")
            else:
                cells.append(fmt(row.get(tg)))
        print("| %s | %s | %s | %s |" % (row["workload"], row.get("unit", "-"), " | ".join(cells),
                                         " | ".join(fmt(ratio(row, p)) for p in peers)))
    errs = [(r["workload"], t, e) for r in results for t, e in r["errors"].items()]
    if errs:
        print()
        for w, tg, e in errs:
            print("error: %s on %s: %s" % (w, tg, e))
    print()
    for tgt, v in losses.items():
        if isinstance(v, tuple):
            print("kill -9 right after close: %s has %d of %d files in S3%s" % (
                tgt, v[0], v[1], "" if v[0] == v[1] else "  <-- DATA LOST"))
        else:
            print("kill -9 right after close: %s: %s" % (tgt, v))
    print("peak RSS (KiB): " + ", ".join("%s %s" % (k, v) for k, v in rss.items()))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"results": results, "rss_kib": rss, "unavailable": unavailable,
                       "kill_after_close": losses}, f, indent=1)
