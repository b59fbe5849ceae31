#!/usr/bin/python3
"""make soak: a mixed load for SOAK_SECONDS (default 600) against two-node
clusters, checking loss and order throughout and watching the processes'
memory and descriptors.

usage: soak.py BUILD_DIR        (SOAK_SECONDS, SOAK_SAMPLE_SECONDS in the env)

Processes (all on loopback, ephemeral ports, one generated secret of mode
0600 in a temporary directory):
  - two chat servers clustered (chat1 --node s1, chat2 --join chat1), load
    from bench/chat_load with --port2 (clients alternate between the two
    servers, so every channel spans both nodes), in rounds of up to 20 s;
    chat_load checks every receipt's per-sender sequence and that every
    message reached every other member of its channel;
  - two pub/sub brokers clustered, load from bench/pubsub_load with
    --pub-port (subscribers on one broker, publishers on the other; the
    direction alternates every round), each subscriber checking order and
    loss per publisher;
  - two test nodes (tests/cluster/testnode.c) clustered, each running actor
    churn (4 short-lived actors every 10 ms, each setting two timers and
    cancelling one) and a sequenced stream to the other (1000 messages/s)
    whose sink counts gaps and misordering.
Every SOAK_SAMPLE_SECONDS (5) the VmRSS and open descriptors of the six
server processes are sampled (a line on stderr). rss_start is the sum after
the warm-up (a quarter of the run, at most 60 s), rss_end the last sample
under load; fds are counted with no load client connected, before the load
and after it. Fails (exit 1) on any lost or misordered message, a load
client's failure, a server that died or did not stop cleanly, RSS growth
past rss_start + max(rss_start / 4, 64 MiB), or fds_end > fds_start + 8.
The last line on stdout is
  SOAK seconds=<s> messages=<n> lost=<n> rss_start_kb=<n> rss_end_kb=<n> fds_start=<n> fds_end=<n>
where messages counts deliveries checked for order and loss (chat receipts,
pub/sub receipts, test-node stream messages). Every process started is
killed on every exit path (children get SIGKILL if this script dies)."""
import ctypes, os, re, secrets, shutil, signal, subprocess, sys, tempfile, threading, time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SAMPLE = float(os.environ.get("SOAK_SAMPLE_SECONDS", "5"))
WARMUP = min(60.0, SECONDS / 4)
CHAT_CLIENTS, CHAT_CHANNELS = 20, 4
PS_SUBS, PS_CHANNELS, PS_PUBS, PS_MESSAGES = 20, 5, 4, 20000
WAIT_S = 60

libc = ctypes.CDLL(None, use_errno=True)
problems = []
lock = threading.Lock()
totals = {"messages": 0, "lost": 0}


def problem(what):
    with lock:
        problems.append(what)
    print("soak: PROBLEM: " + what, file=sys.stderr, flush=True)


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def written(f):
    """All a child has written so far to f (its stdout or stderr file), read
    with pread: the child shares f's offset, and a seek here would move where
    its next write lands, over earlier output (tests/chat/test_harness.py)."""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


class Stop(Exception):
    pass


def on_signal(sig, frame):
    raise Stop("signal %d" % sig)


class Proc:
    def __init__(self, name, argv, stdin=False):
        self.name = name
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE if stdin else self.out,
                                  stderr=self.err, text=stdin, bufsize=1 if stdin else -1,
                                  preexec_fn=die_with_parent)

    def wait_out(self, pattern):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            m = re.search(pattern, written(self.out))
            if m:
                return m
            if self.p.poll() is not None:
                raise Stop("%s exited: %s" % (self.name, self.errtail()))
            time.sleep(0.05)
        raise Stop("%s did not print %r" % (self.name, pattern))

    def events(self):
        """This process's cluster log lines about nodes going down."""
        return [l for l in written(self.err).decode(errors="replace").splitlines()
                if " down (" in l]

    def errtail(self):
        return written(self.err).decode(errors="replace")[-2000:]

    def sample(self):
        """(VmRSS kB, open fds) or None once the process is gone."""
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            return rss, len(os.listdir("/proc/%d/fd" % self.p.pid))
        except (OSError, AttributeError):
            return None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


class Server(Proc):
    """A chat server or pub/sub broker as a cluster node."""
    def __init__(self, exe, name, secret, join=None, extra=()):
        argv = [exe, "--listen", "127.0.0.1:0", "--node", name + "@127.0.0.1",
                "--cluster", "127.0.0.1:0", "--secret-file", secret, *extra]
        if join:
            argv += ["--join", join]
        Proc.__init__(self, name, argv)
        self.port = int(self.wait_out(rb"listening on 127\.0\.0\.1:(\d+)").group(1))
        self.cluster = self.wait_out(rb"cluster address (127\.0\.0\.1:\d+)").group(1).decode()

    def stop(self):
        """SIGTERM: the server must exit 0 within the bound."""
        if self.p.poll() is not None:
            problem("%s died during the soak (exit %s): %s" %
                    (self.name, self.p.returncode, self.errtail()))
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            problem("%s did not stop on SIGTERM" % self.name)
            return
        if rc != 0:
            problem("%s exited %d on SIGTERM: %s" % (self.name, rc, self.errtail()))


class TestNode(Proc):
    def __init__(self, exe, name, secret, seed=None):
        argv = [exe, "--name", name + "@127.0.0.1", "--listen", "127.0.0.1:0",
                "--secret", secret]
        if seed:
            argv += ["--seed", seed]
        Proc.__init__(self, name, argv, stdin=True)
        m = re.match(r"READY (\S+)", self.p.stdout.readline())
        if not m:
            raise Stop("%s did not start: %s" % (name, self.errtail()))
        self.addr = m.group(1)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if not ans.startswith("OK"):
            raise Stop("%s: %s -> %r" % (self.name, line, ans))
        return ans[2:].strip()

    def stop(self):
        if self.p.poll() is not None:
            problem("%s died during the soak: %s" % (self.name, self.errtail()))
            return
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            problem("%s did not stop when its stdin closed" % self.name)
            return
        if rc != 0:
            problem("%s exited %d: %s" % (self.name, rc, self.errtail()))


def run_client(argv):
    """Runs a load client to its end; (exit code, stdout, stderr)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=die_with_parent)
    try:
        out, err = p.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return -1, out, err + " (killed after 600 s)"
    return p.returncode, out, err


def chat_rounds(exe, s1, s2, deadline, stop_evt):
    members = CHAT_CLIENTS // CHAT_CHANNELS
    n = 0
    while not stop_evt.is_set() and time.monotonic() < deadline - 5:
        secs = max(1, min(20, int(deadline - time.monotonic()) - 3))
        a, b = (s1, s2) if n % 2 == 0 else (s2, s1)
        rc, out, err = run_client([exe, "--port", str(a.port), "--port2", str(b.port),
                                   "--clients", str(CHAT_CLIENTS), "--channels",
                                   str(CHAT_CHANNELS), "--size", "64", "--window", "4",
                                   "--warmup", "0.5", "--seconds", str(secs),
                                   "--name", "soak", "--nick", "r%dn" % n])
        m = re.search(r"sent=(\d+)", out)
        if rc != 0 or not m:
            m2 = re.search(r"got (\d+) of (\d+) messages", err)
            lost = int(m2.group(2)) - int(m2.group(1)) if m2 else \
                1 if "lost or reordered" in err else 0  # else the round failed otherwise
            with lock:
                totals["lost"] += lost
            problem("chat_load round %d failed (exit %d): %s" % (n, rc, err.strip()[-500:]))
        else:
            with lock:
                totals["messages"] += int(m.group(1)) * (members - 1)
        n += 1


def pubsub_rounds(exe, b1, b2, deadline, stop_evt):
    n = 0
    while not stop_evt.is_set() and time.monotonic() < deadline - 5:
        subs, pubs = (b1, b2) if n % 2 == 0 else (b2, b1)
        msgs = PS_MESSAGES
        rc, out, err = run_client([exe, "--port", str(subs.port), "--pub-port", str(pubs.port),
                                   "--subs", str(PS_SUBS), "--channels", str(PS_CHANNELS),
                                   "--pubs", str(PS_PUBS), "--messages", str(msgs),
                                   "--window", "16", "--size", "64", "--name", "soak"])
        m = re.search(r"RESULT pubsub \S+ \S+ (\d+) .* lost=(\d+) order_errors=(\d+)", out)
        with lock:
            if m:
                totals["messages"] += int(m.group(1))
                totals["lost"] += int(m.group(2)) + int(m.group(3))
            else:
                totals["lost"] += 1
        if rc != 0 or not m:
            problem("pubsub_load round %d failed (exit %d): %s %s" %
                    (n, rc, out.strip()[-300:], err.strip()[-300:]))
        n += 1


def main():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    exes = {
        "chat": os.path.join(BUILD, "examples/chat"),
        "pubsub": os.path.join(BUILD, "examples/pubsub"),
        "chat_load": os.path.join(BUILD, "bench/chat_load"),
        "pubsub_load": os.path.join(BUILD, "bench/pubsub_load"),
        "testnode": os.path.join(BUILD, "tests/ax_testnode"),
    }
    for k, v in exes.items():
        if not os.access(v, os.X_OK):
            print("soak: %s not built (%s)" % (k, v), file=sys.stderr)
            return 2, None
    tmp = tempfile.mkdtemp(prefix="axon-soak-")
    secret = os.path.join(tmp, "secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_hex(32).encode())
    os.close(fd)
    procs, stats = [], {}
    stop_evt = threading.Event()
    try:
        c1 = Server(exes["chat"], "s1", secret, extra=["--quiet"])
        procs.append(c1)
        c2 = Server(exes["chat"], "s2", secret, join=c1.cluster, extra=["--quiet"])
        procs.append(c2)
        p1 = Server(exes["pubsub"], "p1", secret)
        procs.append(p1)
        p2 = Server(exes["pubsub"], "p2", secret, join=p1.cluster)
        procs.append(p2)
        t1 = TestNode(exes["testnode"], "t1", secret)
        procs.append(t1)
        t2 = TestNode(exes["testnode"], "t2", secret, seed=t1.addr)
        procs.append(t2)
        deadline0 = time.monotonic() + WAIT_S
        while not (t1.cmd("nodes") == "1" and t2.cmd("nodes") == "1"):
            if time.monotonic() > deadline0:
                raise Stop("the test nodes did not connect")
            time.sleep(0.1)
        time.sleep(0.5)  # let the chat and pub/sub nodes settle before counting fds
        fds_start = sum(p.sample()[1] for p in procs)
        t1.cmd("churn 4")
        t2.cmd("churn 4")
        t1.cmd("stream t12 t2@127.0.0.1 10")
        t2.cmd("stream t21 t1@127.0.0.1 10")

        t0 = time.monotonic()
        deadline = t0 + SECONDS
        loaders = [threading.Thread(target=chat_rounds, daemon=True,
                                    args=(exes["chat_load"], c1, c2, deadline, stop_evt)),
                   threading.Thread(target=pubsub_rounds, daemon=True,
                                    args=(exes["pubsub_load"], p1, p2, deadline, stop_evt))]
        for th in loaders:
            th.start()
        rss_start = rss_end = None
        next_sample = t0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_sample:
                samples = [p.sample() for p in procs]
                if any(s is None for s in samples):
                    problem("a server died: " + ", ".join(
                        p.name for p, s in zip(procs, samples) if s is None))
                    break
                rss = sum(s[0] for s in samples)
                print("soak: t=%4.0f s rss_kb=%d fds=%d %s" % (
                    now - t0, rss, sum(s[1] for s in samples),
                    " ".join("%s=%d/%d" % (p.name, s[0], s[1]) for p, s in zip(procs, samples))),
                    file=sys.stderr, flush=True)
                if rss_start is None and now - t0 >= WARMUP:
                    rss_start = rss
                rss_end = rss
                next_sample += SAMPLE
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        stop_evt.set()
        for th in loaders:
            th.join(timeout=700)
        if rss_start is None:
            rss_start = rss_end
        # the test nodes' streams: stop, drain, count
        for src, dst, tag in ((t1, t2, "t12"), (t2, t1, "t21")):
            sent = int(re.search(r"sent=(\d+)", src.cmd("sstop " + tag)).group(1))
            recv = gaps = mis = 0
            drain = time.monotonic() + WAIT_S
            while time.monotonic() < drain:
                m = re.search(r"\b%s:(\d+):(\d+):(\d+):(\d+)" % tag, dst.cmd("sink"))
                recv, nxt, gaps, mis = (int(x) for x in m.groups()) if m else (0, 0, 0, 0)
                if recv >= sent:
                    break
                time.sleep(0.1)
            with lock:
                totals["messages"] += recv
                totals["lost"] += (sent - recv) + mis
            if recv != sent or gaps or mis:
                problem("stream %s: sent %d received %d gaps %d misordered %d" %
                        (tag, sent, recv, gaps, mis))
        for t in (t1, t2):
            st = dict(w.split("=") for w in t.cmd("cstats").split())
            print("soak: %s churn %s" % (t.name, st), file=sys.stderr)
            if int(st["spawned"]) == 0 or int(st["live"]) > 1000:
                problem("%s: churn spawned %s, %s live" % (t.name, st["spawned"], st["live"]))
        time.sleep(1.0)  # the load clients' connections are closed on the servers
        fds_end = None
        settle = time.monotonic() + WAIT_S
        while time.monotonic() < settle:  # closes are asynchronous: wait for them, bounded
            samples = [p.sample() for p in procs]
            if any(s is None for s in samples):
                break
            fds_end = sum(s[1] for s in samples)
            if fds_end <= fds_start + 8:
                break
            time.sleep(0.5)
        bound = rss_start + max(rss_start // 4, 64 * 1024)
        if rss_end > bound:
            problem("RSS grew from %d kB to %d kB (bound %d kB)" % (rss_start, rss_end, bound))
        if fds_end is None or fds_end > fds_start + 8:
            problem("descriptors grew from %d to %s" % (fds_start, fds_end))
        for p in procs:  # a node down between two live nodes is a finding
            for l in p.events():
                problem("%s: %s" % (p.name, l.strip()))
        for p in procs:
            p.stop()
        stats.update(seconds=int(time.monotonic() - t0), rss_start=rss_start, rss_end=rss_end,
                     fds_start=fds_start, fds_end=fds_end if fds_end is not None else -1)
        return (1 if problems or totals["lost"] else 0), stats
    except Stop as e:
        problem("stopped: %s" % e)
        return 1, stats or None
    finally:
        stop_evt.set()
        for p in procs:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    rc, st = main()
    st = st or {}
    print("SOAK seconds=%d messages=%d lost=%d rss_start_kb=%d rss_end_kb=%d fds_start=%d fds_end=%d"
          % (st.get("seconds", 0), totals["messages"], totals["lost"], st.get("rss_start") or 0,
             st.get("rss_end") or 0, st.get("fds_start", 0), st.get("fds_end", 0)), flush=True)
    sys.exit(rc)
