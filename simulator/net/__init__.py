"""net layer (see DESIGN.md §1)."""
