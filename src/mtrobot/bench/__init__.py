"""``mtrobot bench NAME``: measurements of the hot paths, printed as JSON lines (DESIGN.md section 6)."""
