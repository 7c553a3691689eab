"""explain layer (see DESIGN.md §1)."""
