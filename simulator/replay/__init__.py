"""replay layer: stepping, timelines, replays and diffs built on engine.session (DESIGN.md §1)."""
