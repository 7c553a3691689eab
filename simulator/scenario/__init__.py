"""scenario layer (see DESIGN.md §1)."""
