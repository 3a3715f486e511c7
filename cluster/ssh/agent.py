"""faultbed's helper on a host of the ssh backend, run as `python3 - VERB ARGS...` with this file on stdin.

Standard library only (the host needs python3, nothing of faultbed's). It never looks a process up
by name: every process a run starts is written to <run dir>/processes.jsonl with its pid and the
kernel's start time, and every signal goes to that pid only while its start time still matches
(a reused pid is never hit). Each verb prints one JSON value.

    prepare REQUEST_JSON            {run_dir, harness, packages, ports, cached}: this host's clock first, then
                                    the host's lock (<workdir>/lock; {"busy": its holder} when another run
                                    holds it, and nothing else is done), the run directory, the missing Debian packages installed (root or
                                    sudo -n), which of `ports` nothing listens on, whether `cached` (a
                                    file under <workdir>/cache) is there
    free-ports PORT...              those of PORT... that nothing listens on (any address)
    spawn RUN_DIR SPECS_JSON        start each {name, log, cwd, env, argv} in its own session, recorded;
                                    [{pid, start}, ...]
    signal PID START SIGNAL WANTED TIMEOUT   send it (when PID is still that process), wait until it is WANTED
                                    (paused: in every thread; "stopping" when some thread is not by then)
    state PID START [PID START...]  running | paused | dead for each
    stop PID START GRACE            SIGCONT + SIGTERM, SIGKILL after GRACE seconds; until it is gone
    hosts-file RUN_ID LINES_JSON    name -> address lines in /etc/hosts, in a block marked with the run id
    stop-all RUN_DIR GRACE          stop every recorded process but the lock's holder (SIGTERM, SIGKILL after
                                    GRACE seconds)
    cleanup RUN_DIR                 stop every recorded process, drop the /etc/hosts block, release the lock,
                                    remove RUN_DIR
    runs WORKDIR                    the run directories under WORKDIR, each with its harness
    drop-cache WORKDIR              remove <workdir>/cache, and <workdir>/lock when no one holds it

One run at a time on a host. The lock is an flock on <workdir>/lock held by a small process of the
run (recorded like every other, named "lock"): it is released when that process ends, at the end of
the run's cleanup, by gc's cleanup of a crashed run, or by the kernel if the process dies; the
holder removes the file as it goes (only while the path is still its file). The file says which run
holds it.
"""

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

PROCESSES = "processes.jsonl"
HARNESS = "harness.json"
CACHE = "cache"  # files kept between runs (the Toxiproxy binary by its hash); gc removes it with the last run
ETC_HOSTS = "/etc/hosts"
LOCK = "lock"  # <workdir>/lock: one run at a time on a host
LOCK_HOLDER = "lock"  # the name of the process that holds it, in processes.jsonl
# The holder: keeps the inherited locked descriptor open until a signal ends it, then removes the lock
# file if the path still names its file (another run may have taken a new one after a SIGKILL).
HOLDER = """# faultbed: the lock of this host's workdir, held for one run
import os, signal, sys
path, fd = sys.argv[1], int(sys.argv[2])
def release(*_):
    try:
        mine, named = os.fstat(fd), os.stat(path)
        if (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino):
            os.unlink(path)
    except OSError:
        pass
    os._exit(0)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, release)
while True:
    signal.pause()
"""


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def state(pid, start):
    if start_time(pid) != start:
        return "dead"
    try:
        with open("/proc/%d/stat" % pid) as fh:
            status = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "dead"
    if status in ("Z", "X", "x"):
        return "dead"
    return "paused" if status in ("T", "t") else "running"


def send(pid, start, sig):
    if state(pid, start) == "dead":
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def every_thread_stopped(pid):
    """A SIGSTOP stops each thread in its own time: until the last one, the process may still answer."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return True
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, task)) as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] not in ("T", "t", "Z", "X", "x"):  # stopped, ended
                    return False
        except (OSError, IndexError):
            continue  # a thread gone meanwhile
    return True


def signal_and_wait(pid, start, sig, wanted, timeout):
    send(pid, start, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = state(pid, start)
        if now == wanted and (wanted != "paused" or every_thread_stopped(pid)):
            return now
        time.sleep(0.01)
    now = state(pid, start)
    return "stopping" if now == "paused" and not every_thread_stopped(pid) else now


def wait_dead(pid, start, timeout):
    deadline = time.monotonic() + timeout
    while state(pid, start) != "dead":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop(pid, start, grace):
    send(pid, start, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    send(pid, start, signal.SIGTERM)
    if not wait_dead(pid, start, grace):
        send(pid, start, signal.SIGKILL)
        return wait_dead(pid, start, 5.0)
    return True


def same_file(fd, path):
    try:
        mine, named = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def try_lock(path):
    """(descriptor holding an flock on `path`, None), or (None, what the holder wrote there)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(os.read(fd, 65536).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            return None, holder if isinstance(holder, dict) else {}
        if same_file(fd, path):
            return fd, None
        os.close(fd)  # its holder removed it as we opened it: take the new one


def hold_lock(run_dir, fd, path, owner):
    """Hand the locked descriptor to a holder process of the run (recorded), and say who holds it."""
    proc = subprocess.Popen([sys.executable, "-S", "-c", HOLDER, path, str(fd)], pass_fds=(fd,),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd="/")
    record(run_dir, {"name": LOCK_HOLDER, "pid": proc.pid, "start": start_time(proc.pid)})
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(owner).encode(), 0)


def prepare(request):
    now = time.time()
    run_dir = request["run_dir"]
    workdir = os.path.dirname(run_dir.rstrip("/"))
    os.makedirs(workdir, exist_ok=True)
    lock_path = os.path.join(workdir, LOCK)
    fd, holder = try_lock(lock_path)
    if fd is None:
        return {"time": now, "busy": holder}
    try:
        for sub in ("nodes", "data", "code"):
            os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
        with open(os.path.join(run_dir, HARNESS), "w") as fh:
            json.dump(request["harness"], fh)
        hold_lock(run_dir, fd, lock_path, {"run_dir": run_dir, "harness": request["harness"]})
    finally:
        os.close(fd)
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot_id = fh.read().strip()
    except OSError:
        boot_id = ""
    return {"time": now, "hostname": socket.gethostname(), "boot_id": boot_id, "uid": os.getuid(),
            "packages": packages(request.get("packages", [])), "free_ports": free_ports(request.get("ports", [])),
            "cached": os.path.isfile(os.path.join(os.path.dirname(run_dir.rstrip("/")), CACHE,
                                                  request.get("cached", "")))}


def free_ports(ports):
    free = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        free.append(port)
    return free


def installed(package):
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    return result.returncode == 0 and b"install ok installed" in result.stdout


def packages(names):
    missing = [name for name in names if not installed(name)]
    if not missing:
        return {"missing": [], "installed": []}
    sudo = [] if os.getuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = []
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
                    + missing):
        result = subprocess.run(sudo + command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        log.append(result.stdout.decode(errors="replace").strip().splitlines()[-1:])
    still = [name for name in missing if not installed(name)]
    return {"missing": still, "installed": [n for n in missing if n not in still], "log": log}


def record(run_dir, entry):
    with open(os.path.join(run_dir, PROCESSES), "a") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def spawn(run_dir, name, log_path, cwd, extra_env, argv):
    env = dict(os.environ)
    env.update(extra_env)
    os.makedirs(cwd, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, start_new_session=True)
    start = start_time(proc.pid)
    record(run_dir, {"name": name, "pid": proc.pid, "start": start})
    return {"pid": proc.pid, "start": start}


def hosts_file(run_id, lines):
    """Replace this run's block of /etc/hosts (written in place: in a container it is a bind mount)."""
    begin, end = "# faultbed %s begin" % run_id, "# faultbed %s end" % run_id
    with open(ETC_HOSTS) as fh:
        kept = fh.read().splitlines()
    if begin in kept and end in kept:
        kept = kept[:kept.index(begin)] + kept[kept.index(end) + 1:]
    if lines:
        kept += [begin] + lines + [end]
    with open(ETC_HOSTS, "w") as fh:
        fh.write("\n".join(kept) + "\n")
    return {"lines": len(lines)}


def recorded(run_dir):
    entries = []
    try:
        with open(os.path.join(run_dir, PROCESSES)) as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn last line: the process it named was not started yet
                if isinstance(entry, dict) and isinstance(entry.get("pid"), int):
                    entries.append(entry)
    except OSError:
        pass
    return entries


def stop_all(run_dir, grace, lock_too=False):
    """Every recorded process still running (the lock's holder only if `lock_too`): SIGCONT + SIGTERM all
    at once, SIGKILL after `grace`."""
    live = [e for e in recorded(run_dir) if state(e["pid"], e.get("start")) != "dead"
            and (lock_too or e.get("name") != LOCK_HOLDER)]
    for entry in live:
        send(entry["pid"], entry.get("start"), signal.SIGCONT)
        send(entry["pid"], entry.get("start"), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(state(e["pid"], e.get("start")) != "dead" for e in live):
        time.sleep(0.02)
    stopped, failed = [], []
    for entry in live:
        if state(entry["pid"], entry.get("start")) != "dead":
            send(entry["pid"], entry.get("start"), signal.SIGKILL)
        name = "%s (pid %d)" % (entry.get("name"), entry["pid"])
        (stopped if wait_dead(entry["pid"], entry.get("start"), 5.0) else failed).append(name)
    return {"stopped": stopped, "failed": failed}


def cleanup(run_dir):
    answer = stop_all(run_dir, 2.0)
    stopped, failed = answer["stopped"], answer["failed"]
    run_id = os.path.basename(run_dir.rstrip("/"))
    try:
        hosts_file(run_id, [])
    except OSError as exc:
        failed.append("%s block: %s" % (ETC_HOSTS, exc.strerror))
    if not failed:  # the host is free for another run only once this one's traces are gone from it
        answer = stop_all(run_dir, 2.0, lock_too=True)
        stopped, failed = stopped + answer["stopped"], answer["failed"]
    if not failed:
        shutil.rmtree(run_dir, ignore_errors=True)
        if os.path.exists(run_dir):
            failed.append("directory %s" % run_dir)
    return {"stopped": stopped, "failed": failed}


def drop_free_lock(path):
    """Remove a lock file no one holds (its holder was SIGKILLed before it could remove it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if same_file(fd, path):
            os.unlink(path)
    except OSError:
        pass  # held: a run is on
    finally:
        os.close(fd)


def runs(workdir):
    found = []
    try:
        names = sorted(os.listdir(workdir))
    except OSError:
        return found
    for name in names:
        path = os.path.join(workdir, name)
        if name == CACHE or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, HARNESS)) as fh:
                harness = json.load(fh)
        except (OSError, ValueError):
            harness = None
        live = [e for e in recorded(path) if state(e["pid"], e.get("start")) != "dead"]
        found.append({"run_dir": path, "harness": harness, "live": len(live)})
    return found


def main(argv):
    verb, args = argv[0], argv[1:]
    if verb == "prepare":
        result = prepare(json.loads(args[0]))
    elif verb == "free-ports":
        result = free_ports([int(p) for p in args])
    elif verb == "packages":
        result = packages(args)
    elif verb == "spawn":
        result = [spawn(args[0], s["name"], s["log"], s["cwd"], s["env"], s["argv"]) for s in json.loads(args[1])]
    elif verb == "signal":
        result = signal_and_wait(int(args[0]), int(args[1]), getattr(signal, args[2]), args[3], float(args[4]))
    elif verb == "state":
        result = [state(int(args[i]), int(args[i + 1])) for i in range(0, len(args), 2)]
    elif verb == "stop":
        result = stop(int(args[0]), int(args[1]), float(args[2]))
    elif verb == "hosts-file":
        result = hosts_file(args[0], json.loads(args[1]))
    elif verb == "stop-all":
        result = stop_all(args[0], float(args[1]))
    elif verb == "cleanup":
        result = cleanup(args[0])
    elif verb == "runs":
        result = runs(args[0])
    elif verb == "drop-cache":
        cache = os.path.join(args[0], CACHE)
        existed = os.path.exists(cache)
        shutil.rmtree(cache, ignore_errors=True)
        result = existed and not os.path.exists(cache)
        drop_free_lock(os.path.join(args[0], LOCK))
    else:
        sys.stderr.write("faultbed agent: unknown verb %s\n" % verb)
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
