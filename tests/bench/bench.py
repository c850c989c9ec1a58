#!/usr/bin/env python3
"""occfs benchmark: the same workloads, in one run, on

  native  the host directory behind the broker (the ceiling),
  occfs   brokerfs (local backend) mounted through mount.occfs,
  sshfs   sshfs 3.7 with -o directport to an sftp-server on loopback,

and a table of ratios.  This is a benchmark, not a test: it never fails on a
figure, it reports them.  Needs root (drops caches, mounts), fio, sshfs,
socat, and an installed occfs (`make install`), or a build directory named
by OCCFS_BIN (brokerfs/brokerfs, mountc/mountc and tools/occfsctl from
there; mountc is then run directly instead of mount(8)'s helper).

With --s3 it compares instead occfs's s3 backend with s3fs and rclone on one
throw-away radosgw (s3bench.py).

  sudo tests/bench/run [--quick] [--only WORKLOAD,...] [--targets native,occfs,sshfs]
  sudo OCCFS_BIN=build-a OCCFS_BIN_B=build-b tests/bench/run --targets occfs,occfs-b,sshfs
      (occfs-b: a second build in the same run, for before/after figures)
  sudo tests/bench/run --s3 [--quick] [--only ...] [--targets occfs,s3fs,rclone-off,rclone-writes]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def occfs_bin(name, sub, env="OCCFS_BIN"):
    """A program from the build directory $OCCFS_BIN, else from PATH."""
    b = os.environ.get(env)
    return os.path.join(b, sub) if b else name


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def settle(limit_kib=4096, timeout=10):
    """Let the disk finish what the last workload left: sync, then wait
    until little is dirty or under writeback.  Without it a target run right
    after another one's writes is measured against that writeback (on the
    reference machine the second of two builds ran the same fio write job
    up to twice as fast as the first)."""
    subprocess.run(["sync"])
    end = time.time() + timeout
    while time.time() < end:
        n = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(("Dirty:", "Writeback:")):
                    n += int(line.split()[1])
        if n < limit_kib:
            break
        time.sleep(0.1)
    time.sleep(0.5)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, what, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pid_of_mount(mnt):
    """The FUSE daemon serving mnt: the process holding /dev/fuse for it."""
    out = subprocess.run(["pgrep", "-f", "mountc.* " + mnt + "( |$)"],
                         capture_output=True, text=True).stdout.split()
    if not out:
        out = subprocess.run(["pgrep", "-f", "mount.occfs.* " + mnt],
                             capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


class Targets:
    def __init__(self, work, wanted):
        self.work = work
        self.wanted = wanted
        self.dirs = {}
        self.procs = []
        self.mounts = []
        self.broker_pid = None
        self.mountc_pid = None

    def setup(self):
        w = self.work
        root = os.path.join(w, "broker-root")
        native = os.path.join(root, "bench")
        os.makedirs(native)
        if "native" in self.wanted:
            self.dirs["native"] = native
        if "occfs" in self.wanted:
            self._setup_occfs(root)
        if "occfs-b" in self.wanted:
            if not os.environ.get("OCCFS_BIN_B"):
                sys.exit("bench: target occfs-b needs OCCFS_BIN_B (a second build directory)")
            self._setup_occfs(root, "occfs-b", "OCCFS_BIN_B")
        if "sshfs" in self.wanted:
            self._setup_sshfs()

    def _setup_occfs(self, root, name="occfs", env="OCCFS_BIN", extra=None):
        """occfs from $env's build (else installed); "occfs-b" is a second
        build ($OCCFS_BIN_B) on the same root, to compare two builds in
        one run.  extra: more mount options for this mount alone."""
        w = self.work
        key, pub = os.path.join(w, "key"), os.path.join(w, "pub")
        sock = os.path.join(w, name + ".sock")
        handle = os.path.join(w, name + ".handle")
        mnt = os.path.join(w, "mnt-" + name)
        os.makedirs(mnt)
        occfsctl = occfs_bin("occfsctl", "tools/occfsctl", env)
        if not os.path.exists(key):
            sh([occfsctl, "token", "keygen", "--private", key, "--public", pub])
        sh([occfsctl, "token", "mint", "--key", key, "--fsid", "bench",
            "--intent", "write", "--ttl", "86400", "--out", handle])
        log = open(os.path.join(w, name + ".log"), "w")
        p = subprocess.Popen([occfs_bin("brokerfs", "brokerfs/brokerfs", env), "-f",
                              "--listen", "unix:" + sock,
                              "--root", root, "--token-pubkey", pub],
                             stderr=log)
        self.procs.append(p)
        wait_for(lambda: os.path.exists(sock), "broker socket")
        opts = "handle=" + handle
        if os.environ.get("OCCFS_MOUNT_OPTIONS"):
            opts += "," + os.environ["OCCFS_MOUNT_OPTIONS"]
        if extra:
            opts += "," + extra
        if os.environ.get(env):
            sh([occfs_bin("mountc", "mountc/mountc", env), "unix:" + sock, mnt,
                "-o", opts])
        else:
            sh(["mount", "-t", "occfs", "unix:" + sock, mnt, "-o", opts])
        self.mounts.append(mnt)
        if name == "occfs":
            self.broker_pid = p.pid
            self.mountc_pid = pid_of_mount(mnt)
        # The occfs mount shows the same tree as native; bench in a subdir
        # so the two never see each other's files.
        d = os.path.join(mnt, name)
        os.makedirs(d)
        self.dirs[name] = d

    def _setup_sshfs(self):
        w = self.work
        exported = os.path.join(w, "sshfs-root")
        mnt = os.path.join(w, "mnt-sshfs")
        os.makedirs(exported)
        os.makedirs(mnt)
        port = free_port()
        p = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,nodelay" % port,
                              "EXEC:" + SFTP_SERVER],
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        time.sleep(0.3)
        sh(["sshfs", "-o", "directport=%d" % port, "127.0.0.1:" + exported, mnt])
        self.mounts.append(mnt)
        self.dirs["sshfs"] = mnt

    def rss(self):
        return {"brokerfs": peak_rss_kib(self.broker_pid) if self.broker_pid else None,
                "mountc": peak_rss_kib(self.mountc_pid) if self.mountc_pid else None}

    def teardown(self):
        for m in reversed(self.mounts):
            if subprocess.run(["umount", m]).returncode != 0:
                subprocess.run(["umount", "-l", m])
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---- workloads: each returns (value, unit, higher_is_better) ---------------

def fio(d, rw, bs, jobs, size, runtime, time_based=True):
    job = os.path.join(d, "fio-%s-%s-%d" % (rw, bs, jobs))
    os.makedirs(job, exist_ok=True)
    args = ["fio", "--name=bench", "--directory=" + job, "--rw=" + rw,
            "--bs=" + bs, "--numjobs=%d" % jobs, "--size=" + size,
            "--ioengine=psync", "--group_reporting", "--output-format=json"]
    if rw in ("read", "randread"):
        # Lay the files out first, then read them cold.
        sh(args[:-1] + ["--rw=write", "--bs=1M", "--end_fsync=1",
                        "--output=/dev/null"], capture_output=True)
        drop_caches()
        if time_based:
            args += ["--runtime=%d" % runtime, "--time_based"]
    else:
        args += ["--end_fsync=1"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    res = json.loads(out[out.index("{"):])["jobs"][0]
    side = res["read"] if rw in ("read", "randread") else res["write"]
    shutil.rmtree(job)
    if rw == "randread":
        return side["iops"], "IOPS", True
    return side["bw_bytes"] / 1e6, "MB/s", True


def create_files(d, n=1000, size=4096):
    sub = os.path.join(d, "small")
    os.makedirs(sub)
    data = b"x" * size
    t0 = time.monotonic()
    for i in range(n):
        fd = os.open(os.path.join(sub, "f%05d" % i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    el = time.monotonic() - t0
    shutil.rmtree(sub)
    return n / el, "files/s", True


def ls_l(d, n=10000):
    sub = os.path.join(d, "many")
    os.makedirs(sub)
    for i in range(n):
        os.close(os.open(os.path.join(sub, "entry-%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    drop_caches()
    time.sleep(1.1)  # let FUSE entry/attr caches expire: measure a cold listing
    t0 = time.monotonic()
    sh(["ls", "-l", sub], stdout=subprocess.DEVNULL)
    el = time.monotonic() - t0
    shutil.rmtree(sub)
    return el, "s", False


def tar_x(d, tarball):
    sub = os.path.join(d, "tar")
    os.makedirs(sub)
    t0 = time.monotonic()
    sh(["tar", "-xf", tarball, "-C", sub])
    sh(["sync", "-f", sub])
    el = time.monotonic() - t0
    shutil.rmtree(sub)
    return el, "s", False


def workloads(quick, tarball):
    size = "64M" if quick else "256M"
    rt = 3 if quick else 8
    w = []
    for rw, label in (("write", "seq write"), ("read", "seq read")):
        for bs in ("256k", "4M"):
            for jobs in (1, 4):
                w.append(("%s %s x%d" % (label, bs, jobs),
                          (lambda d, rw=rw, bs=bs, jobs=jobs: fio(d, rw, bs, jobs, size, rt))))
    w.append(("rand read 4k x1", lambda d: fio(d, "randread", "4k", 1, size, rt)))
    w.append(("create 1000 files", create_files))
    w.append(("ls -l 10000", ls_l))
    w.append(("tar -x source tree", lambda d: tar_x(d, tarball)))
    return w


def make_tarball(work):
    tarball = os.path.join(work, "src.tar")
    sh(["tar", "-cf", tarball, "-C", "/usr/include", "linux", "openssl", "c++"])
    return tarball


def fmt(v):
    if v is None:
        return "-"
    return "%.3g" % v if v < 100 else "%.0f" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    ap.add_argument("--only", help="comma-separated workload name prefixes")
    ap.add_argument("--targets", help="default native,occfs,sshfs; with --s3 "
                    "occfs,s3fs,rclone-off,rclone-writes")
    ap.add_argument("--s3", action="store_true",
                    help="occfs's s3 backend against s3fs and rclone on radosgw")
    ap.add_argument("--count-requests", action="store_true",
                    help="with --s3: send every target through a logging proxy and "
                    "report S3 requests per workload instead of ratios")
    ap.add_argument("--s3-latency", type=float, default=0, metavar="MS",
                    help="with --s3: send every target through a proxy that holds "
                    "each S3 reply for MS milliseconds (a far server's round trip)")
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (mounts, drop_caches)")
    work = tempfile.mkdtemp(prefix="occfs-bench.", dir=args.workdir)
    if args.s3:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import s3bench
        try:
            s3bench.run(sys.modules[__name__], args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    wanted = (args.targets or "native,occfs,sshfs").split(",")
    t = Targets(work, wanted)
    results = []
    try:
        t.setup()
        tarball = make_tarball(work)
        for name, fn in workloads(args.quick, tarball):
            if args.only and not any(name.startswith(p) for p in args.only.split(",")):
                continue
            row = {"workload": name}
            for tgt in wanted:
                settle()
                v, unit, hib = fn(t.dirs[tgt])
                row[tgt] = v
                row["unit"] = unit
                row["higher_is_better"] = hib
                print("bench: %-22s %-6s %10s %s" % (name, tgt, fmt(v), unit), flush=True)
            results.append(row)
        rss = t.rss()
    finally:
        t.teardown()
        shutil.rmtree(work, ignore_errors=True)

    def ratio(row, a, b):
        if a not in row or b not in row or not row[a] or not row[b]:
            return None
        return row[a] / row[b] if row["higher_is_better"] else row[b] / row[a]

    print()
    print("Ratios are speed-ups (>1 means occfs is faster), whatever the unit.")
    peers = [p for p in ("native", "sshfs", "occfs-b") if p in wanted]
    hdr = "| workload | unit | " + " | ".join(wanted) + " | " + \
        " | ".join("occfs/" + p for p in peers) + " |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for row in results:
        print("| %s | %s | %s | %s |" % (
            row["workload"], row["unit"],
            " | ".join(fmt(row.get(tg)) for tg in wanted),
            " | ".join(fmt(ratio(row, "occfs", p)) for p in peers)))
    print()
    print("peak RSS: brokerfs %s KiB, mountc %s KiB" % (rss["brokerfs"], rss["mountc"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "rss_kib": rss}, f, indent=1)


if __name__ == "__main__":
    main()
