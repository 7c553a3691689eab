"""transport layer (see DESIGN.md §1)."""
