"""Benchmarks the last N commits of the current branch on this machine, publishes the history
and checks that the published graphs hold more than one commit.

    python asv_bench/history.py [-n 3] [-b REGEX ...] [--rerun] [-- ASV_RUN_OPTIONS ...]

1. `asv machine --yes`, once, when this machine has not been described yet;
2. `asv run HASHFILE:...` on the last N commits along the branch's first parents (`git rev-list
   --first-parent -n N HEAD`), each built into a wheel and installed in a virtualenv that asv
   makes (asv.conf.json), with the benchmark suite of the working tree. Benchmarks that already
   have a result for a commit are not run again (`--skip-existing-successful`; `--rerun` runs
   them all), so a rerun costs only what is new. `-b` selects benchmarks as `asv run -b` does;
   options after `--` go to `asv run` as they are (e.g. `-- -a rounds=1 -a repeat=3`);
3. `asv publish`: the pages go to asv_bench/html (`asv preview` serves them);
4. reads the published graphs (html/graphs/.../BENCHMARK.json) and prints, for each selected
   benchmark, how many of the N commits have a point on its graph. Exits 1 unless at least one
   benchmark has points for two commits or more.

Each commit is built and its kernels compiled once, in the first benchmark that needs them: on a
2-core machine, a few minutes per commit before the benchmarks themselves.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HTML = os.path.join(HERE, "html")


def _asv(*args):
    command = [sys.executable, "-m", "asv", *args]
    print("$", " ".join(command[2:]), flush=True)
    return subprocess.run(command, cwd=HERE).returncode


def _last_commits(n):
    out = subprocess.run(
        ["git", "rev-list", "--first-parent", "-n", str(n), "HEAD"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def _has_value(value):
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return value is not None


def commits_on_graphs(html, commits, patterns):
    """{benchmark: the commits of `commits` with a point on its published graphs}, for the
    benchmarks of the published suite whose names match one of `patterns` (all when none)."""
    with open(os.path.join(html, "index.json")) as f:
        index = json.load(f)
    to_hash = {int(revision): commit for revision, commit in index["revision_to_hash"].items()}
    wanted = set(commits)
    found = {}
    for name in index["benchmarks"]:
        if patterns and not any(re.search(p, name) for p in patterns):
            continue
        found[name] = set()
        for path in glob.glob(os.path.join(html, "graphs", "**", f"{name}.json"), recursive=True):
            if os.sep + "summary" + os.sep in path:
                continue
            with open(path) as f:
                points = json.load(f)
            for revision, value in points:
                if to_hash.get(revision) in wanted and _has_value(value):
                    found[name].add(to_hash[revision])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--commits", type=int, default=3, help="how many commits (default 3)")
    parser.add_argument("-b", "--bench", action="append", default=[], help="benchmarks (a regex)")
    parser.add_argument("--rerun", action="store_true", help="run benchmarks that have results too")
    parser.add_argument("asv_run_options", nargs="*", help="after --: more options for asv run")
    args = parser.parse_args()

    if not os.path.exists(os.path.expanduser("~/.asv-machine.json")):
        _asv("machine", "--yes")
    commits = _last_commits(args.commits)
    with tempfile.NamedTemporaryFile("w", prefix="asv-history-", suffix=".txt") as hashes:
        hashes.write("\n".join(commits) + "\n")
        hashes.flush()
        run = ["run", f"HASHFILE:{hashes.name}", "--show-stderr"]
        run += [] if args.rerun else ["--skip-existing-successful"]
        run += [option for pattern in args.bench for option in ("-b", pattern)]
        status = _asv(*run, *args.asv_run_options)
    if status:
        print(f"asv run exited with {status}: some benchmarks failed (their output is above)")
    if _asv("publish"):
        return 1

    found = commits_on_graphs(HTML, commits, args.bench)
    print(f"\nthe published graphs in {HTML}, points among the last {len(commits)} commits:")
    for name, on_graph in sorted(found.items()):
        print(f"  {len(on_graph)} of {len(commits)}  {name}")
    tracked = [name for name, on_graph in found.items() if len(on_graph) >= 2]
    if not tracked:
        print("no benchmark has points for two commits or more: the history is not there")
        return 1
    print(f"{len(tracked)} benchmark(s) with a history of two commits or more; `asv preview` shows them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
