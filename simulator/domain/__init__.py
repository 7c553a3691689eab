"""domain layer (see DESIGN.md §1)."""
