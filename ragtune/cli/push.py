"""`ragtune push`, and the push at the end of `ragtune run --push`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import hub


def _warn(line: str) -> None:
    print(f"Warning: {line}", file=sys.stderr)


def _push(
    run_dir: Path,
    repo_id: str,
    private: bool,
    dry_run: bool,
    force: bool,
    with_data: bool = False,
    timeout: float | None = None,
    from_run: bool = False,
) -> int:
    """`ragtune push`, or the push at the end of `ragtune run --push` (`from_run`: its advice names `ragtune push`)."""
    if dry_run:
        plan = hub.plan_push(run_dir, repo_id, private, with_data)
        if plan.left_out:
            _warn(hub.left_out_line(plan.left_out))
        visibility = "private" if private else "public"
        if plan.dataset_repo_id:
            print(
                f"Would upload {len(plan.dataset_files)} files ({plan.dataset_bytes / 1e6:.1f} MB) to "
                f"{visibility} dataset repo {plan.dataset_repo_id}:"
            )
            for rel, size in plan.dataset_files:
                print(f"  {rel:<50} {size:>12,} bytes")
        print(
            f"Would upload {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) to "
            f"{visibility} model repo {repo_id}"
            + (f", its card listing {plan.dataset_repo_id}:" if plan.dataset_repo_id else ":")
        )
        for rel, size in plan.files:
            print(f"  {rel:<50} {size:>12,} bytes")
        print(hub.what_leaves(run_dir, repo_id, with_data))
        return 0
    # `run` has neither --force nor --timeout: its advice names what it has.
    hints = (
        {
            "force_hint": f"push it anyway with `ragtune push {run_dir} {repo_id} --force`",
            "timeout_hint": hub.TIMEOUT_ENV,
        }
        if from_run
        else {}
    )
    # Before any upload, once the push is known to go ahead: the card quotes excerpts of the user's documents.
    hub.plan_push(run_dir, repo_id, private, with_data)
    hub.check_metrics(run_dir, force, **{k: v for k, v in hints.items() if k == "force_hint"})
    print(hub.what_leaves(run_dir, repo_id, with_data), flush=True)
    url = hub.push(
        run_dir, repo_id, private=private, force=force, with_data=with_data, timeout=timeout, warn=_warn, **hints
    )
    if with_data:
        print(f"Pushed the pairs of {run_dir} to dataset {hub.dataset_repo_id(repo_id)}")
    print(f"Pushed {run_dir / 'model'} to {url}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    return _push(args.run_dir, args.repo_id, args.private, args.dry_run, args.force, args.with_data, args.timeout)
