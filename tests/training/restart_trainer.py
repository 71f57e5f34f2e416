"""A trainer whose workers checkpoint under --job-dir and resume after a restart.

It is what makes a worker restart useful: a restarted worker goes on from its last step
instead of starting over. Workers and evaluators train `--steps` steps, saving a checkpoint
after each; the chief (primary) waits until every one of them is done. Each start of a
replica appends its TF_CONFIG, arguments and credential variable to
`starts-<type>-<index>.jsonl` in the job dir.

How replicas misbehave:
  --crash-once-at K   a worker or evaluator exits 7 the first time it reaches step K
  --wait-to-be-killed a worker's first run writes `pid-<type>-<index>` after step 2, then
                      waits to be killed (the test SIGKILLs it)
  --always-crash      every worker exits 7 as soon as it starts
  --ps-crash          the parameter server exits 9 as soon as it starts
  --interleave N      chief and worker 0 print `tick I` in turns, N lines in all, each
                      handing over only once its own line is in its log
"""

TRAINER = '''
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--step-seconds", type=float, default=0.05)
parser.add_argument("--crash-once-at", type=int, default=0)
parser.add_argument("--wait-to-be-killed", action="store_true")
parser.add_argument("--always-crash", action="store_true")
parser.add_argument("--ps-crash", action="store_true")
parser.add_argument("--interleave", type=int, default=0)
args, _ = parser.parse_known_args()

tf_config = json.loads(os.environ["TF_CONFIG"])
kind, index = tf_config["task"]["type"], tf_config["task"]["index"]
me = f"{kind}-{index}"
job_dir = args.job_dir
os.makedirs(job_dir, exist_ok=True)


def path(name):
    return os.path.join(job_dir, name)


def write(name, text):
    with open(path(name) + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path(name) + ".tmp", path(name))


with open(path(f"starts-{me}.jsonl"), "a") as handle:
    start = {
        "tf_config": tf_config,
        "argv": sys.argv[1:],
        "credential": os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"),
    }
    handle.write(json.dumps(start) + "\\n")


def in_my_log(text):
    """Whether `text` is a line of this replica's own log (the run's logs/ beside work/)."""
    task = "master" if kind in ("chief", "master") else kind
    log = os.path.join(os.getcwd(), "..", "logs", f"{task}-replica-{index}.log")
    try:
        with open(log) as handle:
            return text in handle.read().splitlines()
    except FileNotFoundError:
        return False


def interleave(turn):
    """Print every other tick, starting with `turn`, waiting for the other's hand-over."""
    for tick in range(turn, args.interleave, 2):
        while tick and not os.path.exists(path(f"token-{tick}")):
            time.sleep(0.01)
        print(f"tick {tick}", flush=True)
        while not in_my_log(f"tick {tick}"):
            time.sleep(0.01)
        write(f"token-{tick + 1}", "")


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            return "zombie" not in handle.read()
    except FileNotFoundError:
        return False


if kind == "ps":
    if args.ps_crash:
        print("ps crashing", file=sys.stderr, flush=True)
        sys.exit(9)
    time.sleep(600)
    sys.exit(0)

if kind in ("chief", "master"):
    if args.interleave:
        interleave(0)
    workers = len(tf_config["cluster"].get("worker", []))
    evaluators = int(tf_config["job"].get("evaluatorCount") or 0)
    others = [f"worker-{i}" for i in range(workers)]
    others += [f"evaluator-{i}" for i in range(evaluators)]
    while not all(os.path.exists(path(f"done-{other}")) for other in others):
        time.sleep(0.05)
    for other in others:  # and until they have exited, so each one's end is its own
        while alive(int(open(path(f"done-{other}")).read())):
            time.sleep(0.05)
    print("chief: every worker is done", flush=True)
    sys.exit(0)

if args.always_crash:
    print(f"{me} cannot start", file=sys.stderr, flush=True)
    sys.exit(7)
if args.interleave and me == "worker-0":
    interleave(1)

checkpoint = path(f"checkpoint-{me}.json")
step = json.load(open(checkpoint))["step"] if os.path.exists(checkpoint) else 0
print(f"{me} resuming from the checkpoint of step {step}" if step else f"{me} starting", flush=True)
first_run = step == 0
while step < args.steps:
    step += 1
    time.sleep(args.step_seconds)
    write(f"checkpoint-{me}.json", json.dumps({"step": step}))
    print(f"{me} step {step}", flush=True)
    if step == args.crash_once_at and not os.path.exists(path(f"crashed-{me}")):
        write(f"crashed-{me}", "")
        print(f"{me} crashing at step {step}", flush=True)
        sys.exit(7)
    if step == 2 and args.wait_to_be_killed and first_run and kind == "worker":
        write(f"pid-{me}", str(os.getpid()))
        time.sleep(600)
write(f"done-{me}", str(os.getpid()))
print(f"{me} done", flush=True)
'''
