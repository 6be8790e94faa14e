"""Before/after: one benchmark script run against an older commit's loadbay and against this tree's, in
alternating rounds on the same machine, so a change can be shown not to slow anything down.

The older commit is checked out once into a temporary git worktree and put first on ``PYTHONPATH``
(its ``loadbay`` then shadows the installed one; child processes inherit it); the benchmark script
itself is this tree's for both sides, so both run the same workload and the same checks, through
loadbay's public API only. Each round runs "before" then "after" (or the other way round on odd
rounds, so neither side always runs on a warmer machine). Printed: every line on which the two
outputs of a round differ, side by side, and the script's wall seconds; ``--logs DIR`` keeps every
output. A non-zero exit of either side stops the comparison.

Usage: ``python bench/before_after.py REV [--rounds 3] [--logs DIR] -- SCRIPT.py [ARGS...]``, e.g.
``python bench/before_after.py 7f95f87 -- bench/atomic_append.py 200000 3``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def worktree(rev: str, where: Path) -> Path:
    path = where / f"loadbay-{rev}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    link_mapped_packages(path)
    return path


def link_mapped_packages(tree: Path) -> None:
    """Link each folder that pyproject's package-dir installs inside ``loadbay`` (common/ as ``loadbay.common``)
    where an import looks for it: else ``loadbay.common`` of the older commit is not found under its
    ``loadbay`` and this tree's editable install supplies it, so "before" would run this tree's normalizer."""
    text = (tree / "pyproject.toml").read_text()
    mapping = tomllib.loads(text).get("tool", {}).get("setuptools", {}).get("package-dir", {})
    for name, folder in mapping.items():
        link = tree.joinpath(*name.split("."))
        if "." in name and not link.exists():
            link.symlink_to(tree / folder, target_is_directory=True)


def environment(pythonpath: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    return env


def loadbay_of(pythonpath: Path | None) -> str:
    """Where ``import loadbay`` and its normalizer come from on that side: the check that the sides differ."""
    code = ("import sys, loadbay, loadbay.normalize as n; "
            "print(loadbay.__file__, 'normalizer', sys.modules[n.RelationalNormalizer.__module__].__file__)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment(pythonpath),
                          cwd=pythonpath or REPO, check=True).stdout.strip()


def run(script: list[str], pythonpath: Path | None) -> tuple[float, str]:
    env = environment(pythonpath)
    started = time.perf_counter()
    # from outside this tree: a working directory of this tree would put its loadbay first on sys.path
    proc = subprocess.run([sys.executable, str(REPO / script[0]), *script[1:]], capture_output=True, text=True,
                          env=env, cwd=pythonpath or REPO)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{script} ({'before' if pythonpath else 'after'}) exited {proc.returncode}:\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the older commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=Path, help="keep each output here")
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("name the benchmark script after --: REV [--rounds N] -- SCRIPT.py [ARGS...]")
    args = parser.parse_args(argv[:argv.index("--")])
    script = argv[argv.index("--") + 1:]
    with tempfile.TemporaryDirectory(prefix="lb_before_after_") as tmp:
        old = worktree(args.rev, Path(tmp))
        try:
            print(f"before: {loadbay_of(old)}\nafter:  {loadbay_of(None)}")
            seconds: dict[str, list[float]] = {"before": [], "after": []}
            for r in range(args.rounds):
                order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
                outputs = {}
                for side in order:
                    s, outputs[side] = run(script, old if side == "before" else None)
                    seconds[side].append(s)
                    if args.logs:
                        args.logs.mkdir(parents=True, exist_ok=True)
                        (args.logs / f"{Path(script[0]).stem}.{side}.{r}.txt").write_text(outputs[side])
                print(f"\n== round {r + 1}: {' '.join(script)} (before = {args.rev}, after = this tree)")
                for b, a in zip(outputs["before"].splitlines(), outputs["after"].splitlines()):
                    if b != a:
                        print(f"  before | {b}\n  after  | {a}")
            print(f"\nwall seconds of the script, median of {args.rounds}: before "
                  f"{statistics.median(seconds['before']):.1f}, after {statistics.median(seconds['after']):.1f}")
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
