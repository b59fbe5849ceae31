#!/usr/bin/python3
"""faults.<scenario>: faults across node processes, under load.

usage: faults.py kill9|sigstop|netcut PATH/TO/ax_testnode

Three test nodes (tests/cluster/testnode.c) a, b and c form a full mesh.
Under load (sequenced streams a->b, b->a, a->c, b->c, c->a, each about
2000 messages/s) one fault hits c:
  kill9    c gets SIGKILL; a new c (same name, new incarnation) starts later
  sigstop  c gets SIGSTOP (a hung peer), then SIGCONT
  netcut   c runs in its own network namespace, joined to this one by a
           veth pair on a private /30; the link is taken down, then up
Checked on the survivors a and b:
  - a's and b's watcher (linked to and monitoring c's sink) get EXIT and
    DOWN noconnection and NODE_DOWN c within down_after plus generous slack;
  - a's supervisor restarts its linker (a child linked to c's sink) and the
    new linker is running;
  - a and b keep serving: echo calls across them answer, their streams go on;
  - c rejoins (sigstop, netcut: the same node, NODE_UP again; kill9: the
    new incarnation) and messages flow to it again;
  - no message between a and b is lost or misordered: after the streams stop,
    each sink received exactly what the streamer sent, with no gap;
  - VmRSS of a and b returns near the baseline taken under load before the
    fault (generous bound: + max(50 %, 64 MiB)).
No timing assertion is tight: every wait is a bounded loop on a condition.
Every node process gets SIGKILL when this script dies (PR_SET_PDEATHSIG)
and is killed on every exit path; the namespace (unique name axf<pid>, an
address block chosen from the pid) is deleted on every exit path that
runs Python code, and namespaces left by a killed run (axf<pid> whose pid
is gone) are deleted at the next start. netcut exits 77 (skipped) without
root or without `ip netns`."""
import ctypes, os, queue, re, secrets, shutil, signal, subprocess, sys, tempfile, threading, time

HB_MS, DOWN_MS = 250, 3000
SLACK_S = 30          # added to down_after for every "fault is seen" wait
WAIT_S = 60           # bound of every other wait
PER_TICK = 20         # messages per 10 ms per stream
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


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


libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Node:
    def __init__(self, exe, name, listen, secret, seed=None, netns=None):
        self.name = name
        self.log = tempfile.TemporaryFile()
        argv = [exe, "--name", name, "--listen", listen, "--secret", secret,
                "--hb", str(HB_MS), "--down", str(DOWN_MS)]
        if seed:
            argv += ["--seed", seed]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv  # ip execs the node: same pid
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, bufsize=1,
                                  preexec_fn=die_with_parent)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.lines.get(timeout=WAIT_S)
        m = re.match(r"READY (\S+) \d+", ready or "")
        if not m:
            raise Stop("%s did not start: %r" % (name, ready))
        self.addr = m.group(1)

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def cmd(self, line):
        """Sends one command, returns its answer (the text after OK), or
        None for ERR."""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.lines.get(timeout=WAIT_S)
        if ans is None:
            raise Stop("%s: ended during %r" % (self.name, line))
        if ans.startswith("OK"):
            return ans[2:].strip()
        print("%s: %s -> %s" % (self.name, line, ans), flush=True)
        return None

    def kv(self, line):
        ans = self.cmd(line)
        return dict((k, int(v)) for k, v in (w.split("=") for w in ans.split())) if ans else {}

    def sink(self):
        """{tag: (recv, next, gaps, misorder)} of this node's sink."""
        ans = self.cmd("sink") or ""
        out = {}
        for w in ans.split():
            tag, *n = w.split(":")
            out[tag] = tuple(int(x) for x in n)
        return out

    def rss_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def end(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
                os.kill(self.p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        try:
            self.p.stdin.close()
        except Exception:
            pass
        self.p.wait()

    def quit(self):
        """Closes stdin (the node shuts down) and waits; True when it exited 0
        without a sanitizer report."""
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            rc = "hung"
        text = written(self.log).decode(errors="replace")
        return check(rc == 0 and "Sanitizer" not in text,
                     "%s shuts down cleanly (exit %s%s)" %
                     (self.name, rc, ", sanitizer report" if "Sanitizer" in text else ""))

    def stderr_tail(self):
        return written(self.log).decode(errors="replace")[-3000:]


def wait_for(pred, secs, what):
    """Polls pred every 100 ms for up to secs; returns (ok, elapsed s)."""
    t0 = time.monotonic()
    while True:
        if pred():
            return True, time.monotonic() - t0
        if time.monotonic() - t0 > secs:
            check(False, "%s (waited %d s)" % (what, secs))
            return False, time.monotonic() - t0
        time.sleep(0.1)


# ---- network namespace ----
def sh(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sweep_stale():
    r = sh("ip", "netns", "list")
    for line in r.stdout.splitlines():
        m = re.match(r"axf(\d+)\b", line)
        if m and not os.path.exists("/proc/" + m.group(1)):
            sh("ip", "netns", "del", "axf" + m.group(1))


class Netns:
    """This process's namespace axf<pid>, the veth pair axf<pid>h (here) and
    axf<pid>n (there), and a /30 of 10.201.0.0/16 chosen by the pid."""
    def __init__(self):
        pid = os.getpid()
        self.name = "axf%d" % pid
        self.here, self.there = "axf%dh" % pid, "axf%dn" % pid
        blk = pid % 16384
        base = "10.201.%d.%d" % (blk >> 6, (blk & 63) * 4)
        pre = base.rsplit(".", 1)[0] + "."
        last = int(base.rsplit(".", 1)[1])
        self.ip_here, self.ip_there = pre + str(last + 1), pre + str(last + 2)
        self.made = False

    def create(self):
        steps = [
            ("ip", "netns", "add", self.name),
            ("ip", "link", "add", self.here, "type", "veth", "peer", "name", self.there),
            ("ip", "link", "set", self.there, "netns", self.name),
            ("ip", "addr", "add", self.ip_here + "/30", "dev", self.here),
            ("ip", "link", "set", self.here, "up"),
            ("ip", "-n", self.name, "addr", "add", self.ip_there + "/30", "dev", self.there),
            ("ip", "-n", self.name, "link", "set", self.there, "up"),
            ("ip", "-n", self.name, "link", "set", "lo", "up"),
        ]
        for i, s in enumerate(steps):
            r = sh(*s)
            if r.returncode:
                return "%s: %s" % (" ".join(s), r.stderr.strip())
            if i == 0:
                self.made = True
        return None

    def link(self, up):
        r = sh("ip", "-n", self.name, "link", "set", self.there, "up" if up else "down")
        check(r.returncode == 0, "ip link set %s: %s" % ("up" if up else "down", r.stderr))

    def delete(self):
        if self.made:
            sh("ip", "netns", "del", self.name)  # takes the veth pair with it
            sh("ip", "link", "del", self.here)   # in case the pair was never moved
            self.made = False


def streams_check(a, b):
    """Stops a->b and b->a, then checks each sink got exactly what was sent."""
    for src, dst, tag in ((a, b, "ab"), (b, a, "ba")):
        sent = src.kv("sstop " + tag).get("sent", -1)
        ok, _ = wait_for(lambda: dst.sink().get(tag, (0,))[0] >= sent, WAIT_S,
                         "%s: sink got everything %s sent (%d)" % (tag, src.name, sent))
        recv, nxt, gaps, mis = dst.sink().get(tag, (0, 0, 0, 0))
        check(recv == sent and nxt == sent and gaps == 0 and mis == 0,
              "%s: sent %d, received %d (next %d, gaps %d, misordered %d)" %
              (tag, sent, recv, nxt, gaps, mis))
        print("stream %s: sent=%d received=%d gaps=%d misordered=%d" % (tag, sent, recv, gaps, mis))


def main():
    scenario, exe = sys.argv[1], sys.argv[2]
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    tmp = tempfile.mkdtemp(prefix="axon-faults-")
    secret = os.path.join(tmp, "secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_hex(32).encode())
    os.close(fd)
    nodes, ns = [], None
    try:
        host, c_host, c_ns = "127.0.0.1", "127.0.0.1", None
        if scenario == "netcut":
            if os.geteuid() != 0 or not shutil.which("ip"):
                print("SKIP: faults.netcut needs root and iproute2 (ip netns)")
                return 77
            sweep_stale()
            ns = Netns()
            err = ns.create()
            if err:
                print("SKIP: cannot make a network namespace with a veth pair: " + err)
                return 77
            host, c_host, c_ns = ns.ip_here, ns.ip_there, ns.name
        an, bn, cn = "a@" + host, "b@" + host, "c@" + c_host
        a = Node(exe, an, host + ":0", secret)
        nodes.append(a)
        b = Node(exe, bn, host + ":0", secret, seed=a.addr)
        nodes.append(b)
        c = Node(exe, cn, c_host + ":0", secret, seed=a.addr, netns=c_ns)
        nodes.append(c)
        if not wait_for(lambda: all(n.cmd("nodes") == "2" for n in (a, b, c)), WAIT_S,
                        "the three nodes form a mesh")[0]:
            return 1
        for n, other in ((a, bn), (b, an)):
            check(n.cmd("call " + other) is not None, "%s answers an echo call" % other)
        check(a.cmd("watch " + cn) is not None, "a watches c")
        check(b.cmd("watch " + cn) is not None, "b watches c")
        check(a.cmd("sup " + cn) is not None, "a's supervisor starts")
        wait_for(lambda: a.kv("supstats").get("linked") == 1, WAIT_S, "a's linker links to c")
        for n, tag, to in ((a, "ab", bn), (b, "ba", an), (a, "ac", cn), (b, "bc", cn),
                           (c, "ca", an)):
            check(n.cmd("stream %s %s %d" % (tag, to, PER_TICK)) is not None,
                  "stream %s starts" % tag)
        wait_for(lambda: b.sink().get("ab", (0,))[0] > 2000 and
                 a.sink().get("ba", (0,))[0] > 2000, WAIT_S, "the streams flow")
        if failures:
            return 1
        base = {n.name: n.rss_kb() for n in (a, b)}
        up0 = {n.name: n.kv("events").get("node_up", 0) for n in (a, b)}

        # ---- the fault ----
        if scenario == "kill9":
            c.end(signal.SIGKILL)
        elif scenario == "sigstop":
            os.kill(c.p.pid, signal.SIGSTOP)
        else:
            ns.link(False)
        t_fault, seen_at = time.monotonic(), {}

        def seen():
            for n in (a, b):
                ev = n.kv("events")
                if n.name not in seen_at and ev.get("exit_nc", 0) >= 1 and \
                        ev.get("down_nc", 0) >= 1 and ev.get("node_down", 0) >= 1:
                    seen_at[n.name] = time.monotonic() - t_fault
            return len(seen_at) == 2
        wait_for(seen, DOWN_MS / 1000 + SLACK_S,
                 "a and b see c down (EXIT, DOWN noconnection, NODE_DOWN)")
        for name, secs in sorted(seen_at.items()):
            print("%s: c down seen after %.2f s (down_after %.1f s)" %
                  (name, secs, DOWN_MS / 1000), flush=True)
        ok, secs = wait_for(lambda: a.kv("supstats").get("restarts", 0) >= 1 and
                            a.kv("supstats").get("active") == 1, WAIT_S,
                            "a's supervisor restarts its linker")
        # the survivors keep serving
        for n, other in ((a, bn), (b, an)):
            check(n.cmd("call " + other) is not None, "%s answers while c is away" % other)
            check(n.cmd("nodes") == "1", "%s sees one node while c is away" % n.name)
        ab0 = b.sink().get("ab", (0,))[0]
        wait_for(lambda: b.sink().get("ab", (0,))[0] > ab0 + 1000, WAIT_S,
                 "a->b keeps flowing while c is away")

        # ---- recovery: c back (the same node, or a new incarnation) ----
        if scenario == "kill9":
            c = Node(exe, cn, c_host + ":0", secret, seed=a.addr, netns=c_ns)
            nodes.append(c)
        elif scenario == "sigstop":
            os.kill(c.p.pid, signal.SIGCONT)
        else:
            ns.link(True)
        ok, secs = wait_for(lambda: all(n.cmd("nodes") == "2" for n in (a, b, c)),
                            WAIT_S, "c rejoins the mesh")
        print("c rejoined after %.2f s" % secs, flush=True)
        for n in (a, b):
            wait_for(lambda n=n: n.kv("events").get("node_up", 0) > up0[n.name], WAIT_S,
                     "%s gets NODE_UP c again" % n.name)
        wait_for(lambda: a.kv("supstats").get("linked") == 1, WAIT_S,
                 "a's restarted linker links to c again")
        if scenario == "kill9":
            check(c.cmd("stream ca2 %s %d" % (an, PER_TICK)) is not None, "new c streams")
            check(a.cmd("call " + cn) is not None, "new c answers")
        else:
            ac0 = c.sink().get("ac", (0,))[0]
            wait_for(lambda: c.sink().get("ac", (0,))[0] > ac0 + 1000, WAIT_S,
                     "a->c flows again after c's return")
            recv, nxt, gaps, mis = c.sink().get("ac", (0, 0, 0, 0))
            print("stream ac across the fault: received=%d gaps=%d (in flight at the fault)"
                  % (recv, gaps))
            check(mis == 0, "a->c never misordered (%d)" % mis)
        ca = "ca2" if scenario == "kill9" else "ca"  # a new incarnation numbers from 0
        ca0 = a.sink().get(ca, (0,))[0]
        wait_for(lambda: a.sink().get(ca, (0,))[0] > ca0 + 1000, WAIT_S,
                 "c->a flows after c's return")

        # ---- nothing lost between the survivors, memory back near baseline ----
        streams_check(a, b)
        for n in (a, b):
            bound = base[n.name] + max(base[n.name] // 2, 64 * 1024)
            ok, _ = wait_for(lambda n=n: n.rss_kb() <= bound, WAIT_S,
                             "%s VmRSS back under %d kB (baseline %d kB)" %
                             (n.name, bound, base[n.name]))
            print("%s: VmRSS baseline %d kB, after %d kB" % (n.name, base[n.name], n.rss_kb()))
        for n in (a, b, c):
            n.quit()
        return 1 if failures else 0
    except (Stop, queue.Empty) as e:
        check(False, "stopped: %r" % (e,))
        return 1
    finally:
        for n in nodes:
            n.end()
        if failures:
            for n in nodes:
                print("---- %s stderr ----\n%s" % (n.name, n.stderr_tail()))
        if ns:
            ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    rc = main()
    print("faults %s: %s" % (sys.argv[1], "ok" if rc == 0 else
                               "skipped" if rc == 77 else "FAILED (%d)" % len(failures)),
          flush=True)
    sys.exit(rc)
