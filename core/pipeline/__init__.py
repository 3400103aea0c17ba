"""Orchestration: the command line, grid runs, background jobs and progress."""
