"""What supervises agents: for now, the hand-off of an account's credentials to its agent process."""
