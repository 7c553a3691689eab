"""trace layer (see DESIGN.md §1)."""
